// mx6ctl followup [--days N] [--json] [--suggest [--window D]]: does deferred IPv6
// mail come back over IPv4, how fast, and who never retries?
import { fromFields, report, suggestions, type Attempt } from '../../plugins/lib/followup'
import { batch } from '../../plugins/lib/redis'
import { parse, UsageError, type Command } from './command'
import { shown, table, withRedis } from './shared'

const HELP = `Usage: mx6ctl followup [--days N] [--json]
       mx6ctl followup --suggest [--window D] [--days N] [--json]

mx6-receive fingerprints every IPv6 message it defers (or answers with the MX6
fallback): the envelope, the Message-ID after DATA, the peer's /64 and
forward-confirmed name, the size received and the reason, kept ttl_days
([followup] in mx6-receive.ini). mx6-learn recognises the same message when it
arrives over IPv4 (Message-ID first, else the envelope, reordered recipients,
case and +tags notwithstanding) and records that it came back, and when.

Report over the last N days (default 7):
  - deferred, came back over IPv4, and the share;
  - the delay until it came back: p50, p90, max;
  - octets received over IPv6 before a deferral after DATA (the duplicate work);
  - per sending domain and per host (forward-confirmed name, else /64):
    deferred, came back, never came back.

--suggest lists senders none of whose deferred mail came back within the
window (default 24h; e.g. 90m, 2h, 3d, 30s) as ready-to-run commands for the
never-retry greenlist (mx6:host:green by name, else mx6:ip:green by /64). It
never runs them: check each sender first.

Attempts recorded with mode=observe (would-defer, would-fallback) were accepted
over IPv6 and so never come back: they are counted apart ("observed") and
left out of every other figure and of --suggest.

  --json   the same as JSON. The report:
             {"days": N, "observed": n, "deferred": n, "returned": n,
              "share": 0..1, "delay": {"p50": s, "p90": s, "max": s},
              "bytesBeforeDataDeferral": n,
              "byDomain": [{"sender", "deferred", "returned", "neverReturned"}],
              "byHost": [same]}
           (delays null when nothing came back); with --suggest:
             [{"command": "mx6ctl green ...", "why": "<reason>"}, ...]

Exit status: 0 done, 1 Redis trouble, 2 usage error (one line on stderr).
`

function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(text.trim())
  if (!m) throw new UsageError(`--window ${text}: expected a duration like 90m, 24h or 3d`)
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd']
}

export const followupCommand: Command = {
  summary: 'does deferred IPv6 mail come back over IPv4? (--suggest: senders that never retry)',
  help: HELP,
  async run(argv, io, global) {
    const { values, positionals } = parse(argv, { days: { type: 'string' }, json: { type: 'boolean' }, suggest: { type: 'boolean' }, window: { type: 'string' } })
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const days = values.days === undefined ? 7 : Number(values.days)
    if (!Number.isInteger(days) || days < 1 || days > 60) throw new UsageError('--days takes a whole number from 1 to 60')
    const window = values.window === undefined ? 86400 : seconds(values.window)
    const now = Math.floor(Date.now() / 1000)
    const attempts = await withRedis(global, io, async (ctx) => {
      const envs = await ctx.redis.zrangebyscore(ctx.keys.attempts, now - days * 86400, '+inf')
      const out: Attempt[] = []
      for (let i = 0; i < envs.length; i += 1000) {
        for (const [err, fields] of await batch(ctx.redis, envs.slice(i, i + 1000).map((e): [string, string] => ['hgetall', ctx.keys.attempt(e)]))) {
          const a = err ? null : fromFields(fields as Record<string, string>)
          if (a) out.push(a)
        }
      }
      return out
    })
    if (values.suggest) {
      const s = suggestions(attempts, now, window)
      if (values.json) io.out(JSON.stringify(s, null, 2))
      else if (s.length === 0) io.out('no sender whose deferred mail never came back over IPv4 within the window')
      else for (const x of s) io.out(`# ${shown(x.why)}\n${x.command}`)
      return 0
    }
    const r = report(attempts)
    if (values.json) {
      io.out(JSON.stringify({ days, ...r }, null, 2))
      return 0
    }
    const f = (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : '-')
    io.out(`last ${days} day(s): ${r.deferred} deferred over IPv6, ${r.returned} came back over IPv4 (${(100 * r.share).toFixed(1)} %)`)
    if (r.observed) io.out(`mode=observe: ${r.observed} more would have been deferred (accepted over IPv6, so not expected back; not counted above)`)
    io.out(`delay until back over IPv4: p50 ${f(r.delay.p50)} s, p90 ${f(r.delay.p90)} s, max ${f(r.delay.max)} s`)
    io.out(`received over IPv6 before a deferral after DATA: ${r.bytesBeforeDataDeferral} octets`)
    for (const [title, rows] of [
      ['sending domain', r.byDomain],
      ['sending host (forward-confirmed name, else /64)', r.byHost],
    ] as const) {
      io.out(`\nper ${title}:`)
      for (const l of table([['', 'deferred', 'came back', 'never'], ...rows.slice(0, 50).map((x) => [shown(x.sender, 80), String(x.deferred), String(x.returned), String(x.neverReturned)])], [false, true, true, true])) io.out(`  ${l}`)
    }
    return 0
  },
}
