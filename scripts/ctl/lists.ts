// mx6ctl allow|green ip|domain|host|asn add|rm|ls: the list hashes, written in canonical form.
import ipaddr from 'ipaddr.js'
import { checkListEntry, KINDS, type ListKind } from '../../plugins/lib/entry'
import { checkV6Entry, classifyPeer } from '../../plugins/lib/ip'
import type { Keys } from '../../plugins/lib/keys'
import { CtlError, parse, UsageError, type Command, type GlobalOptions, type Io } from './command'
import { harakaIsPrivate } from './explain-core'
import { quote, scanHash, shown, table, value, withRedis } from './shared'
import { taggedSource } from './source-tag'

// ---------------------------------------------------------------- entries

export type ListName = 'allow' | 'green' | 'arc'
/** The Redis key of a list; null for lists that do not exist (host and asn are green-only). */
export function listKey(keys: Keys, list: ListName, kind: ListKind): string | null {
  if (list === 'arc') return kind === 'domain' ? keys.arcTrusted : null
  if (list === 'allow') return kind === 'ip' ? keys.ipAllow : kind === 'domain' ? keys.domainAllow : null
  return { ip: keys.ipGreen, domain: keys.domainGreen, host: keys.hostGreen, asn: keys.asnGreen }[kind]
}

/** Every list hash with the kind of its entries, for lint. */
export function allLists(keys: Keys): Array<{ key: string; kind: ListKind }> {
  return [
    { key: keys.ipAllow, kind: 'ip' },
    { key: keys.ipGreen, kind: 'ip' },
    { key: keys.domainAllow, kind: 'domain' },
    { key: keys.domainGreen, kind: 'domain' },
    { key: keys.hostGreen, kind: 'host' },
    { key: keys.asnGreen, kind: 'asn' },
    { key: keys.arcTrusted, kind: 'domain' },
  ]
}

/** Display order: addresses numerically (then shorter prefix first), AS numbers numerically, names alphabetically. */
export function compareEntries(kind: ListKind): (a: string, b: string) => number {
  if (kind === 'asn') return (a, b) => (/^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0)
  if (kind === 'ip') {
    const sortKey = (e: string): string => {
      const c = checkV6Entry(e)
      if (!c.ok) return `~${e}`
      const [addr, len] = c.canonical.split('/')
      const p = classifyPeer(addr)
      const hex = p ? expand(p.canonical) : addr
      return `${hex}/${(len ?? '128').padStart(3, '0')}`
    }
    return (a, b) => {
      const x = sortKey(a)
      const y = sortKey(b)
      return x < y ? -1 : x > y ? 1 : 0
    }
  }
  return (a, b) => (a < b ? -1 : a > b ? 1 : 0)
}

/** The widest IP entry taken without --force: anything wider is one typo away from trusting a whole region. */
export const WIDEST_UNFORCED = 16

/** Why a canonical IPv6 entry needs --force (it covers more than a /16), or null. */
export function needsForce(list: ListName, canonical: string): string | null {
  const len = Number(canonical.split('/')[1] ?? 128)
  if (len >= WIDEST_UNFORCED) return null
  const verb = list === 'allow' ? 'allow-list' : 'greenlist'
  if (len === 0) return `${canonical} would ${verb} every IPv6 peer; add --force if you mean it`
  return `${canonical} would ${verb} more than a /16 (${2 ** (WIDEST_UNFORCED - len)} /16 networks); add --force if you mean it`
}

/** The IPv6 ranges Haraka calls private (remote.is_private), as harakaIsPrivate checks them. */
const PRIVATE_V6: Array<[string, string]> = [
  ['::1/128', 'the loopback address'],
  ['::/128', 'the unspecified address'],
  ['fc00::/7', 'unique local (fc00::/7)'],
  ['fe80::/10', 'link-local (fe80::/10)'],
]

/**
 * What makes every peer a canonical IPv6 entry covers private to Haraka (so
 * mx6-receive skips them with skip_private=true), or null when some are not.
 */
export function privateOnly(canonical: string): string | null {
  const [addr, lenText] = canonical.split('/')
  const len = Number(lenText ?? 128)
  const ip = ipaddr.IPv6.parse(addr)
  for (const [cidr, what] of PRIVATE_V6) {
    const range = ipaddr.IPv6.parseCIDR(cidr)
    if (len >= range[1] && ip.match(range)) return what
  }
  return lenText === undefined && harakaIsPrivate(addr) ? 'an address of this host' : null
}

function expand(v6: string): string {
  const [head, tail] = v6.includes('::') ? v6.split('::') : [v6, undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return groups.map((g) => g.padStart(4, '0')).join(':')
}

// ---------------------------------------------------------------- commands

function help(list: ListName): string {
  const kinds = list === 'allow' ? 'ip|domain' : 'ip|domain|host|asn'
  const keys =
    list === 'allow'
      ? `  ip      mx6:ip:allow      IPv6 addresses or CIDRs: trusted (skips content filters)
  domain  mx6:domain:allow  domains (and their subdomains), when authenticated`
      : `  ip      mx6:ip:green      IPv6 addresses or CIDRs: green (accepted, filters still apply)
  domain  mx6:domain:green  domains (and their subdomains), when authenticated
  host    mx6:host:green    forward-confirmed host names (and their subdomains)
  asn     mx6:asn:green     origin AS numbers`
  return `Usage: mx6ctl ${list} ${kinds} add [--force] <entry> [note...]
       mx6ctl ${list} ${kinds} rm <entry>
       mx6ctl ${list} ${kinds} ls [--json]

Manages the ${list === 'allow' ? 'whitelists (verdict trusted)' : 'greenlists (verdict green)'}:
${keys}
${list === 'allow' ? '(host and asn lists are green-only: see mx6ctl green --help)\n' : ''}
Entries are validated and written in canonical form, the only form that
matches: IPv6 in RFC 5952 text (2001:DB8::/32 is written 2001:db8::/32, a
single address without /128); a CIDR with host bits set (2001:db8::1/48) is
refused with the network it would cover, never silently widened. Domains
and hosts as lower-case A-labels (U-labels are converted), no wildcards:
an entry covers its subdomains. AS numbers as digits (AS64500 -> 64500).

The note is free text saying why the entry is there (default: "added by
mx6ctl <date>"); words starting with "-" go after "--".

An IP entry wider than a /16 (prefix length below 16, ::/0 above all) is
refused unless --force is given: it would ${list === 'allow' ? 'trust' : 'greenlist'} a whole region of the
Internet. An IP entry whose every address Haraka calls private (loopback,
unique local fc00::/7, link-local fe80::/10, this host's own addresses) is
added with a note: mx6-receive skips such peers while [main] skip_private=true
(the default), so the entry only matters with skip_private=false.

  add   adds the entry, or replaces the note of an existing one
  rm    removes the entry (exit 1 when it is not there)
  ls    lists entries with their notes, sorted; --json prints
        {"key": "<key>", "entries": {"<entry>": "<note>", ...}}

Exit status: 0 done; 1 Redis trouble, or rm of an entry that is not there;
2 invalid input (a malformed entry or note, a broad entry without --force)
or usage, with one line on stderr.
`
}

function listCommand(list: ListName): Command {
  const HELP = help(list)
  return {
    summary: list === 'allow' ? 'add, remove, list whitelist entries (ip, domain)' : 'add, remove, list greenlist entries (ip, domain, host, asn)',
    help: HELP,
    async run(argv, io, global) {
      const [kindArg, action, ...rest] = argv
      if (!kindArg) throw new UsageError(`missing list kind (${list === 'allow' ? 'ip or domain' : 'ip, domain, host or asn'})`)
      if (!(KINDS as readonly string[]).includes(kindArg)) throw new UsageError(`unknown list kind "${kindArg}"`)
      const kind = kindArg as ListKind
      if (list === 'allow' && (kind === 'host' || kind === 'asn')) {
        throw new UsageError(`there is no allow ${kind} list: host and asn lists are green-only (mx6ctl green ${kind} ...)`)
      }
      if (action === 'add') return add(list, kind, rest, io, global)
      if (action === 'rm') return rm(list, kind, rest, io, global)
      if (action === 'ls') return ls(list, kind, rest, io, global)
      throw new UsageError(action ? `unknown action "${action}" (add, rm or ls)` : 'missing action (add, rm or ls)')
    },
  }
}

export const allowCommand = listCommand('allow')
export const greenCommand = listCommand('green')

const ARC_HELP = `Usage: mx6ctl arc add <sealer> [note...]
       mx6ctl arc rm <sealer>
       mx6ctl arc ls [--json]

The ARC sealers you trust (mx6:arc:trusted, a hash: field = the sealing domain,
d= of ARC-Seal, lower-case A-label; value = a note). Mail that nothing else
authenticates counts as authenticated for its From domain when its ARC chain
validates, the newest ARC-Seal is by a trusted sealer, and that hop's
ARC-Authentication-Results says dmarc=pass (or an SPF or DKIM pass aligned with
the From domain). Trust large mailbox providers and list servers you know,
whose own checks you rely on; a sealer you trust can vouch for any From.

Exit status: 0 done, 1 Redis trouble or (rm) not there, 2 usage error.
`

/** mx6ctl arc: the trusted ARC sealers, with the verbs of the other lists. */
export const arcCommand: Command = {
  summary: 'add, remove, list trusted ARC sealers (forwarded mail)',
  help: ARC_HELP,
  async run(argv, io, global) {
    const [action, ...rest] = argv
    if (action === 'add') return add('arc', 'domain', rest, io, global)
    if (action === 'rm') return rm('arc', 'domain', rest, io, global)
    if (action === 'ls') return ls('arc', 'domain', rest, io, global)
    throw new UsageError(action ? `unknown action "${action}" (add, rm or ls)` : 'missing action (add, rm or ls)')
  },
}

function defaultNote(): string {
  return `added by mx6ctl ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`
}

/** The entry as it will be written, or a UsageError saying why not. */
function entryToWrite(kind: ListKind, text: string): { canonical: string; remark: string | null } {
  const c = checkListEntry(kind, text)
  if (c.status === 'canonical') return { canonical: c.canonical, remark: null }
  if (c.status === 'fixable') return { canonical: c.canonical, remark: `${quote(text)} written in canonical form as ${c.canonical} (${c.problem.replace(/^not in canonical form \((.*)\)$/, '$1')})` }
  if (c.status === 'ambiguous') return fail(`${quote(text)}: ${c.problem}; refused rather than changing what it covers. Did you mean ${c.suggestion}?`)
  return fail(`${quote(text)}: ${c.problem}`)
}

function fail(message: string): never {
  throw new UsageError(message)
}

async function add(list: ListName, kind: ListKind, argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(argv, { force: { type: 'boolean' } })
  const [entry, ...noteWords] = positionals
  if (entry === undefined) throw new UsageError(`missing the ${kind} entry to add`)
  const { canonical, remark } = entryToWrite(kind, entry)
  const broad = kind === 'ip' && !values.force ? needsForce(list, canonical) : null
  if (broad) throw new UsageError(broad)
  const note = noteWords.length ? noteWords.join(' ') : defaultNote()
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(note)) throw new UsageError('the note must be printable text (no control characters or line breaks)')
  if (note.length > 1000) throw new UsageError('the note is too long (at most 1000 characters)')
  return withRedis(global, io, async (ctx) => {
    const key = listKey(ctx.keys, list, kind) as string
    const other = entry !== canonical ? entry : null
    const m = ctx.redis.multi().hget(key, canonical)
    if (other) m.hget(key, other)
    m.hset(key, canonical, note)
    if (other) m.hdel(key, other)
    const r = (await m.exec()) ?? []
    const before = value<string | null>(r[0])
    const otherBefore = other ? value<string | null>(r[1]) : null
    for (const x of r) value(x)
    if (remark) io.out(`note: ${remark}`)
    if (otherBefore !== null) io.out(`note: removed the non-canonical entry ${quote(entry)} (it never matched)`)
    if (before === null) io.out(`added ${canonical} to ${key} (${quote(note)})`)
    else if (before === note) io.out(`${canonical} is already in ${key} with that note`)
    else io.out(`updated ${canonical} in ${key}: note ${quote(note)} (was ${quote(before)})`)
    const inert = kind === 'ip' && ctx.receive.policy.skipPrivate ? privateOnly(canonical) : null
    if (inert) io.out(`note: ${canonical} is ${inert}: Haraka calls such peers private and mx6-receive skips them while [main] skip_private=true, so this entry has no effect until skip_private=false`)
    return 0
  })
}

async function rm(list: ListName, kind: ListKind, argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { positionals } = parse(argv, {})
  if (positionals.length !== 1) throw new UsageError(positionals.length ? 'rm takes exactly one entry' : `missing the ${kind} entry to remove`)
  const entry = positionals[0]
  const c = checkListEntry(kind, entry)
  // The canonical form, and the text exactly as given (to remove hand-typed junk too).
  const fields = [...new Set([...(c.status === 'canonical' || c.status === 'fixable' ? [c.canonical] : []), entry])]
  return withRedis(global, io, async (ctx) => {
    const key = listKey(ctx.keys, list, kind) as string
    const r = (await ctx.redis.multi().hmget(key, ...fields).hdel(key, ...fields).exec()) ?? []
    const notes = value<Array<string | null>>(r[0])
    value(r[1])
    const removed = fields.filter((_f, i) => notes[i] !== null && notes[i] !== undefined)
    if (removed.length === 0) {
      io.err(`mx6ctl ${list}: ${fields.map((f) => quote(f)).join(' / ')} is not in ${key}`)
      return 1
    }
    for (const f of removed) {
      const note = notes[fields.indexOf(f)] as string
      io.out(`removed ${shown(f)} from ${key} (note was ${quote(note)})`)
      const source = taggedSource(note)
      // The source set keeps the entry, so the sync script counts it withheld instead of adding it again.
      if (source) io.out(`note: ${shown(f)} came from source ${source} (mx6ctl sync): while that source lists it, its syncs leave it out (counted as withheld); mx6ctl ${list} ${kind} add puts it back as your own entry`)
    }
    return 0
  })
}

async function ls(list: ListName, kind: ListKind, argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } })
  if (positionals.length) throw new UsageError('ls takes no entries')
  return withRedis(global, io, async (ctx) => {
    const key = listKey(ctx.keys, list, kind) as string
    const type = await ctx.redis.type(key)
    if (type !== 'none' && type !== 'hash') throw new CtlError(`${key} is a ${type}, not a hash: every lookup in it fails (see mx6ctl lint)`)
    const entries = await scanHash(ctx, key)
    const sorted = [...entries.keys()].sort(compareEntries(kind))
    if (values.json) {
      const obj: Record<string, string> = {}
      for (const e of sorted) obj[e] = entries.get(e) as string
      io.out(JSON.stringify({ key, entries: obj }, null, 2))
      return 0
    }
    if (sorted.length === 0) {
      io.out(`${key} is empty`)
      return 0
    }
    io.out(`${key}: ${sorted.length} ${sorted.length === 1 ? 'entry' : 'entries'}`)
    const rows = sorted.map((e) => {
      const c = checkListEntry(kind, e)
      const flag = c.status === 'canonical' ? '' : `  [never matches: ${c.problem}; see mx6ctl lint]`
      return [`  ${shown(e, 100)}`, `${shown(entries.get(e) as string)}${flag}`]
    })
    for (const l of table(rows)) io.out(l)
    return 0
  })
}
