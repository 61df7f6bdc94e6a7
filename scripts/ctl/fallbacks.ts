// mx6ctl fallbacks [--limit N] [--json]: the newest MX6 fallbacks logged by mx6-send.
import { CtlError, parse, UsageError, type Command } from './command'
import { shown, value, withRedis } from './shared'

const MAX_LIMIT = 100_000

const HELP = `Usage: mx6ctl fallbacks [--limit N] [--json]

The newest MX6 fallbacks recorded by mx6-send in mx6:send:fallbacks: a
receiver answered the "retry over IPv4" reply (550 5.5.7 or 456) and the
message was redelivered over IPv4 to the regular MX. Newest first, one
block each: time, domain, the MX6 host, the reply, sender, recipients and
queue id.

  --limit N   how many entries (default 20, at most ${MAX_LIMIT})
  --json      a JSON array of the entries as stored, newest first:
              [{"time", "domain", "host", "code", "status", "reply",
              "mail_from", "recipients": [...], "queue_id"}, ...] (fields
              absent when mx6-send did not record them); an entry that is
              not a JSON object appears as {"unparseable": "<text>"}

Exit status: 0 done, 1 Redis trouble, 2 usage error (one line on stderr).
`

export interface FallbackEntry {
  time?: unknown
  domain?: unknown
  host?: unknown
  code?: unknown
  status?: unknown
  reply?: unknown
  recipients?: unknown
  mail_from?: unknown
  queue_id?: unknown
}

function text(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-'
  return shown(typeof v === 'string' ? v : JSON.stringify(v), 1000)
}

/** One readable block; every value from the log is escaped (it holds remote replies). */
export function formatEntry(e: FallbackEntry): string[] {
  const rcpts = Array.isArray(e.recipients) ? e.recipients : e.recipients === undefined ? [] : [e.recipients]
  const replyLines = typeof e.reply === 'string' ? e.reply.split(/\r?\n/).filter((l) => l !== '') : e.reply === undefined ? [] : [JSON.stringify(e.reply)]
  const code = [e.code, e.status].filter((x) => x !== undefined && x !== null && x !== '').map((x) => text(x)).join(' ')
  const lines = [`${text(e.time)}  ${text(e.domain)}  from MX6 host ${text(e.host)}`]
  lines.push(`  reply:      ${code || '-'}${replyLines.length ? ` ${shown(replyLines[0], 1000)}` : ''}`)
  for (const l of replyLines.slice(1, 20)) lines.push(`              ${shown(l, 1000)}`)
  if (replyLines.length > 20) lines.push(`              ... (${replyLines.length - 20} more lines)`)
  lines.push(`  from:       ${text(e.mail_from)}`)
  lines.push(`  recipients: ${rcpts.length ? rcpts.slice(0, 50).map((r) => text(r)).join(', ') + (rcpts.length > 50 ? `, ... (${rcpts.length} in all)` : '') : '-'}`)
  lines.push(`  queue id:   ${text(e.queue_id)}`)
  return lines
}

export const fallbacksCommand: Command = {
  summary: 'the newest MX6 fallbacks to IPv4 logged by mx6-send',
  help: HELP,
  async run(argv, io, global) {
    const { values, positionals } = parse(argv, { limit: { type: 'string' }, json: { type: 'boolean' } })
    if (positionals.length) throw new UsageError('fallbacks takes no arguments')
    const limit = values.limit === undefined ? 20 : /^\d{1,6}$/.test(values.limit) ? Number(values.limit) : NaN
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new UsageError(`--limit must be a number from 1 to ${MAX_LIMIT}`)
    return withRedis(global, io, async (ctx) => {
      const key = ctx.keys.fallbackLog
      const type = await ctx.redis.type(key)
      if (type !== 'none' && type !== 'list') throw new CtlError(`${key} is a ${type}, not a list`)
      const r = (await ctx.redis.pipeline().llen(key).lrange(key, 0, limit - 1).exec()) ?? []
      const length = value<number>(r[0])
      const raw = value<string[]>(r[1])
      const entries = raw.map((s): FallbackEntry | { unparseable: string } => {
        try {
          const v = JSON.parse(s) as unknown
          return v && typeof v === 'object' && !Array.isArray(v) ? (v as FallbackEntry) : { unparseable: s }
        } catch {
          return { unparseable: s }
        }
      })
      if (values.json) {
        io.out(JSON.stringify(entries, null, 2))
        return 0
      }
      if (length === 0) {
        io.out(`no fallbacks recorded (${key} is empty)`)
        return 0
      }
      io.out(`${key}: ${entries.length === length ? `${length}` : `newest ${entries.length} of ${length}`} fallback${length === 1 ? '' : 's'}, newest first`)
      entries.forEach((e, i) => {
        io.out('')
        if ('unparseable' in e) io.out(`#${i + 1}: not a JSON object: ${shown(e.unparseable, 200)}`)
        else for (const l of formatEntry(e)) io.out(l)
      })
      return 0
    })
  },
}
