// mx6ctl lint [--fix]: entries typed by hand into redis-cli that can never match.
import { Cluster } from 'ioredis'
import { checkListEntry, type ListKind } from '../../plugins/lib/entry'
import { normaliseMember, normaliseRecipient } from './book-members'
import { parse, UsageError, type Command, type Io } from './command'
import type { Context } from './context'
import { allLists } from './lists'
import { quote, scanHash, scanSet, shellArg, value, withRedis } from './shared'

const HELP = `Usage: mx6ctl lint [--fix] [--json]

Scans the lists (mx6:ip:allow, mx6:ip:green, mx6:domain:allow,
mx6:domain:green, mx6:host:green, mx6:asn:green) and every address book
(mx6:book:*) with SCAN/HSCAN/SSCAN, and reports, one line each:
  - keys of the wrong type (every lookup in them fails),
  - entries not in canonical form, with their canonical form: they never
    match as written,
  - entries that can never be fixed (garbage), and entries whose only fix
    would change what they cover (a CIDR with host bits set, a zone id),
  - book keys whose recipient is not normalised (mx6-receive never looks
    them up) and book members that are not normalised.
Exit status 1 when problems were found (or Redis trouble), 0 when
everything is clean, 2 for a usage error.

  --fix   rewrites the fixable entries: the canonical entry with the same
          note, the old one removed (one MULTI per entry); book members
          likewise; a book under a non-normalised recipient is merged into
          the normalised one. Garbage, entries whose fix needs a decision,
          and keys of the wrong type are left alone (never deleted) and
          reported; the exit status is then 1 only if such problems remain.
  --json  the same as one JSON object (the exit status as above):
          {"ok": bool, "fix": bool, "keys": n, "entries": n,
           "fixable": n, "fixed": n, "unfixable": n, "wrongType": n, "left": n,
           "problems": [{"key": "<key>", "entry": "<entry or member>" | null,
             "status": "wrong-type" | "invalid" | "needs-decision" | "fixable",
             "problem": "<why>", "fix": "<canonical form or action>" | null,
             "fixed": bool}]}
          ("left": problems not fixed; entry null for a whole key)
`

interface Tally {
  keys: number
  entries: number
  fixable: number
  fixed: number
  unfixable: number
  wrongType: number
}

export interface LintProblem {
  key: string
  /** The list entry or book member; null for the key as a whole. */
  entry: string | null
  status: 'wrong-type' | 'invalid' | 'needs-decision' | 'fixable'
  problem: string
  fix: string | null
  fixed: boolean
}

/** Collects each problem; prints its line unless the output is JSON. */
class Report {
  readonly problems: LintProblem[] = []
  constructor(
    private readonly io: Io,
    private readonly json: boolean,
  ) {}
  add(p: LintProblem, line: string | null): void {
    this.problems.push(p)
    if (!this.json && line !== null) this.io.out(line)
  }
  /** A line with no problem of its own (already counted elsewhere). */
  say(line: string): void {
    if (!this.json) this.io.out(line)
  }
}

export const lintCommand: Command = {
  summary: 'find (and --fix) list entries and address books that never match',
  help: HELP,
  async run(argv, io, global) {
    const { values, positionals } = parse(argv, { fix: { type: 'boolean' }, json: { type: 'boolean' } })
    if (positionals.length) throw new UsageError('lint takes no arguments')
    const fix = !!values.fix
    return withRedis(global, io, async (ctx) => {
      const t: Tally = { keys: 0, entries: 0, fixable: 0, fixed: 0, unfixable: 0, wrongType: 0 }
      const rep = new Report(io, !!values.json)
      for (const { key, kind } of allLists(ctx.keys)) await lintList(ctx, key, kind, fix, rep, t)
      await lintBooks(ctx, fix, rep, t)
      const problems = t.fixable + t.unfixable + t.wrongType
      const left = fix ? t.fixable - t.fixed + t.unfixable + t.wrongType : problems
      if (values.json) {
        io.out(JSON.stringify({ ok: left === 0, fix, ...t, left, problems: rep.problems }, null, 2))
        return left > 0 ? 1 : 0
      }
      const found = `${t.keys} key${t.keys === 1 ? '' : 's'} and ${t.entries} entr${t.entries === 1 ? 'y' : 'ies'} checked`
      if (problems === 0) {
        io.out(`lint: ${found}: no problems`)
        return 0
      }
      const kinds = `${t.fixable} fixable, ${t.unfixable} not fixable automatically, ${t.wrongType} key${t.wrongType === 1 ? '' : 's'} of the wrong type`
      if (!fix) {
        io.out(`lint: ${found}: ${problems} problem${problems === 1 ? '' : 's'} (${kinds})${t.fixable ? '; mx6ctl lint --fix rewrites the fixable ones' : ''}`)
        return 1
      }
      io.out(`lint: ${found}: ${problems} problem${problems === 1 ? '' : 's'} (${kinds}); fixed ${t.fixed}, ${left} left for you`)
      return left > 0 ? 1 : 0
    })
  },
}

async function keyType(ctx: Context, key: string, want: 'hash' | 'set', rep: Report, t: Tally): Promise<boolean> {
  const type = await ctx.redis.type(key)
  if (type === 'none') return false
  t.keys++
  if (type === want) return true
  t.wrongType++
  const problem = `wrong type: a ${type}, not a ${want}: every lookup in it fails`
  rep.add({ key, entry: null, status: 'wrong-type', problem, fix: null, fixed: false }, `${key}: ${problem}; left alone (inspect it with redis-cli TYPE/DUMP, then rename or delete it)`)
  return false
}

async function lintList(ctx: Context, key: string, kind: ListKind, fix: boolean, rep: Report, t: Tally): Promise<void> {
  if (!(await keyType(ctx, key, 'hash', rep, t))) return
  const entries = await scanHash(ctx, key)
  const removeHint = (e: string): string => {
    const arg = shellArg(e)
    return arg ? `mx6ctl ${key.endsWith(':allow') ? 'allow' : 'green'} ${kind} rm ${arg}` : 'with redis-cli HDEL'
  }
  for (const [entry, note] of entries) {
    t.entries++
    const c = checkListEntry(kind, entry)
    if (c.status === 'canonical') continue
    const found = { key, entry, problem: c.problem, fixed: false }
    if (c.status === 'invalid') {
      t.unfixable++
      rep.add({ ...found, status: 'invalid', fix: null }, `${key}: ${quote(entry)}: ${c.problem}; cannot be fixed, remove it (${removeHint(entry)})`)
      continue
    }
    if (c.status === 'ambiguous') {
      t.unfixable++
      rep.add({ ...found, status: 'needs-decision', fix: c.suggestion }, `${key}: ${quote(entry)}: ${c.problem}; did you mean ${c.suggestion}? Not fixed automatically: it would change what the entry covers`)
      continue
    }
    t.fixable++
    if (!fix) {
      rep.add({ ...found, status: 'fixable', fix: c.canonical }, `${key}: ${quote(entry)}: ${c.problem}; fix: ${c.canonical}`)
      continue
    }
    // The canonical entry keeps its own note if it already exists.
    const r = (await ctx.redis.multi().hsetnx(key, c.canonical, note).hdel(key, entry).exec()) ?? []
    const created = value<number>(r[0]) === 1
    value(r[1])
    t.fixed++
    rep.add({ ...found, status: 'fixable', fix: c.canonical, fixed: true }, `${key}: ${quote(entry)}: ${c.problem}; fixed: ${c.canonical}${created ? '' : ` (already there: its note kept, ${quote(note)} dropped)`}`)
  }
}

/** SCAN MATCH pattern for keys starting with `prefix` (glob characters escaped). */
export function globPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`
}

async function lintBooks(ctx: Context, fix: boolean, rep: Report, t: Tally): Promise<void> {
  const prefix = ctx.keys.book('')
  const found = new Set<string>()
  // On a Cluster every master holds a share of the keys: scan each.
  for (const node of ctx.redis instanceof Cluster ? ctx.redis.nodes('master') : [ctx.redis]) {
    let cursor = '0'
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', globPrefix(prefix), 'COUNT', 1000)
      cursor = next
      for (const k of keys) found.add(k)
    } while (cursor !== '0')
  }
  const delimiter = ctx.receive.recipientDelimiter
  for (const key of [...found].sort()) {
    if (!(await keyType(ctx, key, 'set', rep, t))) continue
    const rcptText = key.slice(prefix.length)
    const rcpt = normaliseRecipient(rcptText, delimiter)
    const members = await scanSet(ctx, key)
    if ('error' in rcpt) {
      t.entries += members.size
      t.unfixable++
      const problem = `the recipient ${quote(rcptText)} is not a valid recipient (${rcpt.error}): the key is never looked up`
      rep.add({ key, entry: null, status: 'invalid', problem, fix: null, fixed: false }, `${key}: ${problem}; cannot be fixed, inspect and delete it by hand`)
      continue
    }
    // What each member should be: its normalised form, or null for garbage.
    const plan = new Map<string, string | null>()
    for (const m of members) {
      t.entries++
      const n = normaliseMember(m)
      if ('error' in n) {
        plan.set(m, null)
        t.unfixable++
        const k = shellArg(key)
        const arg = shellArg(m)
        rep.add({ key, entry: m, status: 'invalid', problem: n.error, fix: null, fixed: false }, `${key}: member ${quote(m)}: ${n.error}; cannot be fixed, remove it (${k && arg ? `redis-cli SREM ${k} ${arg}` : 'with redis-cli SREM'})`)
      } else {
        plan.set(m, n.value)
        if (n.value !== m) {
          t.fixable++
          if (!fix) rep.add({ key, entry: m, status: 'fixable', problem: 'not normalised', fix: n.value, fixed: false }, `${key}: member ${quote(m)}: not normalised; fix: ${n.value}`)
        }
      }
    }
    if (rcpt.value === rcptText) {
      if (!fix) continue
      for (const [m, n] of plan) {
        if (n === null || n === m) continue
        const r = (await ctx.redis.multi().sadd(key, n).srem(key, m).exec()) ?? []
        r.forEach((x) => value(x))
        t.fixed++
        rep.add({ key, entry: m, status: 'fixable', problem: 'not normalised', fix: n, fixed: true }, `${key}: member ${quote(m)}: fixed: ${n}`)
      }
      continue
    }
    // A book under a recipient mx6-receive never looks up: merge into the normalised key.
    const target = ctx.keys.book(rcpt.value)
    const move = [...plan].filter((e): e is [string, string] => e[1] !== null)
    const notNormalised = `recipient not normalised (mx6-receive looks up ${target})`
    if (move.length === 0) {
      // Its members are all garbage, each reported above.
      rep.say(`${key}: ${notNormalised}, and nothing in it to merge`)
      continue
    }
    t.fixable++
    const merge = `merge its ${move.length} valid member${move.length === 1 ? '' : 's'} into ${target}`
    const mergeProblem = { key, entry: null, status: 'fixable' as const, problem: notNormalised, fix: merge }
    if (!fix) {
      rep.add({ ...mergeProblem, fixed: false }, `${key}: ${notNormalised}; fix: ${merge}`)
      continue
    }
    const targetType = await ctx.redis.type(target)
    const merged = targetType === 'none' || targetType === 'set'
    // The members' own normalisation happens with the merge: no line of their own.
    for (const [m, n] of move) if (m !== n) rep.add({ key, entry: m, status: 'fixable', problem: 'not normalised', fix: n, fixed: merged }, null)
    if (!merged) {
      rep.add({ ...mergeProblem, fixed: false }, `${key}: not merged: ${target} is a ${targetType}, not a set`)
      continue
    }
    // Two keys may live on two Cluster nodes: add first, then remove, so nothing is ever lost.
    await ctx.redis.sadd(target, ...new Set(move.map(([, n]) => n)))
    await ctx.redis.srem(key, ...move.map(([m]) => m))
    t.fixed++
    t.fixed += move.filter(([m, n]) => m !== n).length
    const kept = members.size - move.length
    rep.add({ ...mergeProblem, fixed: true }, `${key}: recipient not normalised; fixed: merged ${move.length} member${move.length === 1 ? '' : 's'} into ${target}${kept ? ` (${kept} unfixable left in ${key})` : ` (${key} is gone)`}`)
  }
}
