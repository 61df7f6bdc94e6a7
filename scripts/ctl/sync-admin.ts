// mx6ctl sync ls and sync rm: the synced sources, and removing one.
import { batch } from '../../plugins/lib/redis'
import { CtlError, parse, UsageError, type GlobalOptions, type Io } from './command'
import { listKey, type ListName } from './lists'
import { SOURCE_NAME, sourceTag } from './source-tag'
import { removeSource } from './sync-apply'
import { target } from './sync-lines'
import { quote, table, withRedis } from './shared'

interface SourceRow {
  list: ListName
  kind: 'ip' | 'domain'
  source: string
  key: string
  entries: number
  last: Record<string, unknown> | null
}

/** "<list>:<kind>:<name>" of the sources registry, or null for a field it never writes. */
export function registryField(field: string): { list: ListName; kind: 'ip' | 'domain'; source: string } | null {
  const m = /^(allow|green):(ip|domain):(.+)$/.exec(field)
  if (!m || !SOURCE_NAME.test(m[3])) return null
  return { list: m[1] as ListName, kind: m[2] as 'ip' | 'domain', source: m[3] }
}

function lastRun(json: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(json) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null
  } catch {
    return null
  }
}

export async function syncLs(argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } })
  if (positionals.length) throw new UsageError('sync ls takes no arguments')
  return withRedis(global, io, async (ctx) => {
    // One field per source: small, read whole.
    const registry = await ctx.redis.hgetall(ctx.keys.sources)
    const rows: SourceRow[] = []
    for (const [field, json] of Object.entries(registry).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const t = registryField(field)
      if (!t) continue
      const key = ctx.keys.source(listKey(ctx.keys, t.list, t.kind) as string, t.source)
      rows.push({ ...t, key, entries: 0, last: lastRun(json) })
    }
    const counts = rows.length ? await batch(ctx.redis, rows.map((r): [string, string] => ['scard', r.key])) : []
    rows.forEach((r, i) => {
      if (counts[i][0]) throw counts[i][0]
      r.entries = Number(counts[i][1])
    })
    if (values.json) {
      io.out(JSON.stringify({ key: ctx.keys.sources, sources: rows }, null, 2))
      return 0
    }
    if (rows.length === 0) {
      io.out('no synced sources (mx6ctl sync --help)')
      return 0
    }
    const n = (x: unknown) => (typeof x === 'number' ? x.toLocaleString('en-US') : '?')
    const table_ = rows.map((r) => {
      const l = r.last
      const figures = l ? `${typeof l.time === 'string' ? quote(l.time).slice(1, -1) : '?'}: added ${n(l.added)}, removed ${n(l.removed)}, kept ${n(l.kept)}, owned elsewhere ${n(l.ownedElsewhere)}, withheld ${n(l.withheld)}, rejected ${n(l.rejected)}, duplicates ${n(l.duplicates)} (${n(l.lines)} lines)` : 'no record of the last run'
      return [`${r.list} ${r.kind}`, r.source, `${n(r.entries)} ${r.entries === 1 ? 'entry' : 'entries'}`, `last run ${figures}`]
    })
    for (const l of table(table_)) io.out(l)
    return 0
  })
}

export async function syncRm(argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(argv, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } })
  const t = target(positionals)
  if (positionals.length > 3) throw new UsageError('sync rm takes no file')
  const dry = !!values['dry-run']
  return withRedis(global, io, async (ctx) => {
    const list = listKey(ctx.keys, t.list, t.kind) as string
    const keys = { list, source: ctx.keys.source(list, t.source) }
    const field = `${t.list}:${t.kind}:${t.source}`
    const [exists, known] = await Promise.all([ctx.redis.exists(keys.source), ctx.redis.hexists(ctx.keys.sources, field)])
    if (!exists && !known) throw new CtlError(`no source ${t.source} in ${list} (mx6ctl sync ls)`)
    const r = await removeSource(ctx.redis, keys, sourceTag(t.source), dry)
    if (!dry) await ctx.redis.hdel(ctx.keys.sources, field)
    if (values.json) {
      io.out(JSON.stringify({ list: t.list, kind: t.kind, source: t.source, key: list, dryRun: dry, removed: r.removed, left: r.left }, null, 2))
      return 0
    }
    const verb = dry ? 'would remove' : 'removed'
    const left = r.left ? `; ${r.left} left alone (yours or another source's now, or removed by you already)` : ''
    io.out(`sync rm ${t.list} ${t.kind} ${t.source}${dry ? ' (dry run: nothing changed)' : ''}: ${verb} ${r.removed} ${r.removed === 1 ? 'entry' : 'entries'} from ${list}${left}`)
    return 0
  })
}
