// mx6ctl stats [--days N] [--json]: the per-day decision counters of mx6-receive.
import { batch } from '../../plugins/lib/redis'
import { today } from '../../plugins/lib/store'
import { parse, UsageError, type Command } from './command'
import { quote, table, withRedis } from './shared'

const MAX_DAYS = 3660

const HELP = `Usage: mx6ctl stats [--days N] [--json]

Counts of mx6-receive's decisions over the last N days (UTC, today
included; default 7), read from the hashes mx6:stats:YYYYMMDD (field
<phase>.<verdict>.<rule>, kept stats_days days). Messages and recipients
are counted apart, never added up: data_post counts each message that
reached DATA once (its one verdict for all its recipients); rcpt counts each
recipient decided for good at RCPT (deferred there, or trusted or green
there). A recipient RCPT left pending is counted with its message.

Prints the messages per day and verdict (and the recipients decided at
RCPT), then per verdict and rule (one column per phase), then, when a
reputation provider's answer decided any, per provider (its rules are
dnswl:<name> for its IPv6 zone and dwl:<name> for its domain zone). Decisions made with mode=observe
count as would-defer and would-fallback, apart from real deferrals: that
mail was accepted.

  --days N   how many days, 1 to ${MAX_DAYS}
  --json     {"from", "to", "days": [{"day", "key", "total", "counts":
             {field: n}}], "totals": {field: n}, "verdicts": {verdict: n},
             "providers": {name: {verdict: n}}, "messages", "recipients",
             "total" (the sum of every field)}:
             days oldest first as YYYY-MM-DD, fields
             "<phase>.<verdict>.<rule>", n whole numbers

Exit status: 0 done, 1 Redis trouble, 2 usage error (one line on stderr).
`

const VERDICT_ORDER = ['trusted', 'green', 'defer', 'fallback', 'would-defer', 'would-fallback', 'pending', 'skip']

export interface DayStats {
  day: string
  key: string
  total: number
  counts: Record<string, number>
}

/** The last `days` UTC days, oldest first, as YYYYMMDD. */
export function lastDays(days: number, now = new Date()): string[] {
  const out: string[] = []
  for (let i = days - 1; i >= 0; i--) out.push(today(new Date(now.getTime() - i * 86_400_000)))
  return out
}

function isoDay(yyyymmdd: string): string {
  return `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6, 8)}`
}

/** "<phase>.<verdict>.<rule>"; rules may contain dots or colons ("ip:allow"). */
export function splitField(field: string): { phase: string; verdict: string; rule: string } {
  const m = /^([^.]+)\.([^.]+)\.(.+)$/.exec(field)
  return m ? { phase: m[1], verdict: m[2], rule: m[3] } : { phase: '?', verdict: '?', rule: field }
}

/**
 * The decisions a reputation provider's answer made, per provider and verdict: the rules
 * dnswl:<name> (its IPv6 zone) and dwl:<name> (its domain zone), both phases together.
 */
export function providerCounts(totals: Record<string, number>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const [f, n] of Object.entries(totals)) {
    const { verdict, rule } = splitField(f)
    const m = /^(?:dnswl|dwl):(.+)$/.exec(rule)
    if (!m) continue
    const c = (out[m[1]] ??= {})
    c[verdict] = (c[verdict] ?? 0) + n
  }
  return out
}

function byVerdict(a: string, b: string): number {
  const i = VERDICT_ORDER.indexOf(a)
  const j = VERDICT_ORDER.indexOf(b)
  if (i !== j) return (i < 0 ? 99 : i) - (j < 0 ? 99 : j)
  return a < b ? -1 : a > b ? 1 : 0
}

export const statsCommand: Command = {
  summary: 'decision counts per day, verdict and rule',
  help: HELP,
  async run(argv, io, global) {
    const { values, positionals } = parse(argv, { days: { type: 'string' }, json: { type: 'boolean' } })
    if (positionals.length) throw new UsageError('stats takes no arguments')
    const days = values.days === undefined ? 7 : /^\d{1,5}$/.test(values.days) ? Number(values.days) : NaN
    if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) throw new UsageError(`--days must be a number from 1 to ${MAX_DAYS}`)
    return withRedis(global, io, async (ctx) => {
      const dayKeys = lastDays(days).map((d) => ({ day: d, key: ctx.keys.stats(d) }))
      // One round trip for the whole period (each day's key on its node on a Cluster).
      const results = await batch(ctx.redis, dayKeys.map(({ key }): [string, string] => ['hgetall', key]))
      const stats: DayStats[] = []
      const totals: Record<string, number> = {}
      dayKeys.forEach(({ day, key }, i) => {
        const [err, raw] = results[i] ?? [new Error('no reply'), null]
        const s: DayStats = { day: isoDay(day), key, total: 0, counts: {} }
        if (err) io.err(`warning: ${key}: ${err.message}`)
        for (const [field, v] of Object.entries((raw ?? {}) as Record<string, string>)) {
          if (!/^\d{1,15}$/.test(v)) {
            io.err(`warning: ${key} field ${quote(field)}: ${quote(v)} is not a count; ignored`)
            continue
          }
          const n = Number(v)
          s.counts[field] = n
          s.total += n
          totals[field] = (totals[field] ?? 0) + n
        }
        stats.push(s)
      })
      const total = stats.reduce((a, s) => a + s.total, 0)
      const verdictTotals: Record<string, number> = {}
      for (const [f, n] of Object.entries(totals)) verdictTotals[splitField(f).verdict] = (verdictTotals[splitField(f).verdict] ?? 0) + n
      const inPhase = (phase: string, counts: Record<string, number>) => Object.entries(counts).reduce((a, [f, n]) => a + (splitField(f).phase === phase ? n : 0), 0)
      const providers = providerCounts(totals)
      const messages = inPhase('data_post', totals)
      const recipients = inPhase('rcpt', totals)
      if (values.json) {
        io.out(JSON.stringify({ from: stats[0].day, to: stats[stats.length - 1].day, days: stats, totals, verdicts: verdictTotals, providers, messages, recipients, total }, null, 2))
        return 0
      }
      const period = `${stats[0].day} .. ${stats[stats.length - 1].day} (UTC, ${days} day${days === 1 ? '' : 's'})`
      if (total === 0) {
        io.out(`no decisions counted ${period}`)
        return 0
      }
      io.out(`mx6-receive ${period}: ${messages} message${messages === 1 ? '' : 's'} decided after DATA, ${recipients} recipient${recipients === 1 ? '' : 's'} decided at RCPT`)
      const wouldDefer = verdictTotals['would-defer'] ?? 0
      const wouldFallback = verdictTotals['would-fallback'] ?? 0
      if (wouldDefer || wouldFallback) io.out(`mode=observe: ${wouldDefer} would-defer and ${wouldFallback} would-fallback were recorded only (that mail was accepted)`)
      io.out('')
      // Messages per day and verdict; the recipients decided at RCPT in a column of their own.
      const messageFields = (counts: Record<string, number>) => Object.entries(counts).filter(([f]) => splitField(f).phase === 'data_post')
      const verdicts = [...new Set(messageFields(totals).map(([f]) => splitField(f).verdict))].sort(byVerdict)
      const row = (label: string, counts: Record<string, number>) => {
        const per = verdicts.map((v) => messageFields(counts).reduce((a, [f, n]) => a + (splitField(f).verdict === v ? n : 0), 0))
        return [label, ...per.map(String), String(inPhase('data_post', counts)), String(inPhase('rcpt', counts))]
      }
      const rows = [...stats.map((s) => row(s.day, s.counts)), row('all', totals)]
      for (const l of table([['day', ...verdicts, 'messages', 'rcpt'], ...rows], [false, ...verdicts.map(() => true), true, true])) io.out(l)
      io.out('')
      const phases = [...new Set(Object.keys(totals).map((f) => splitField(f).phase))].sort((a, b) => (a === 'rcpt' ? -1 : b === 'rcpt' ? 1 : a < b ? -1 : 1))
      const rules = new Map<string, { verdict: string; rule: string; per: Record<string, number>; total: number }>()
      for (const [f, n] of Object.entries(totals)) {
        const { phase, verdict, rule } = splitField(f)
        const id = `${verdict}\u0000${rule}`
        const r = rules.get(id) ?? { verdict, rule, per: {}, total: 0 }
        r.per[phase] = (r.per[phase] ?? 0) + n
        r.total += n
        rules.set(id, r)
      }
      const ruleRows = [...rules.values()]
        .sort((a, b) => byVerdict(a.verdict, b.verdict) || b.total - a.total || (a.rule < b.rule ? -1 : 1))
        .map((r) => [r.verdict, r.rule, ...phases.map((p) => String(r.per[p] ?? 0)), String(r.total)])
      for (const l of table([['verdict', 'rule', ...phases, 'total'], ...ruleRows], [false, false, ...phases.map(() => true), true])) io.out(l)
      const perProvider = Object.entries(providers)
      if (perProvider.length) {
        io.out('')
        const rows = perProvider.map(([name, c]) => [name, String(c.trusted ?? 0), String(c.green ?? 0), String(Object.values(c).reduce((a, n) => a + n, 0))])
        for (const l of table([['provider', 'trusted', 'green', 'decisions'], ...rows], [false, true, true, true])) io.out(l)
      }
      return 0
    })
  },
}
