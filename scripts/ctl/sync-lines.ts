// mx6ctl sync, the part without Redis: a provider's list file read line by line (never held
// whole), each line linted the way `mx6ctl allow|green ... add` checks an entry, and the
// figures of a run as the operator reads them.
import os from 'node:os'
import { checkListEntry, type ListKind } from '../../plugins/lib/entry'
import { classifyPeer } from '../../plugins/lib/ip'
import { UsageError } from './command'
import { needsForce, privateOnly, type ListName } from './lists'
import { quote, shown } from './shared'
import { SOURCE_NAME } from './source-tag'

/** Longer lines are rejected, never accumulated (a file with no line breaks must not fill memory). */
export const MAX_LINE = 4096

/** How many rejected lines stderr shows one by one. */
export const SHOWN_REJECTED = 20

/** The entry text of a line: comments (`#` or `;` at the start or after white space) and surrounding white space removed; null when nothing is left. */
export function lineText(line: string): string | null {
  const t = line.replace(/(^|\s)[#;].*$/, '').trim()
  return t === '' ? null : t
}

export interface SyncTarget {
  list: ListName
  kind: 'ip' | 'domain'
  source: string
}

/** The list, kind and source of sync and sync rm, or a UsageError. */
export function target(args: string[]): SyncTarget {
  const [list, kind, source] = args
  if (list !== 'allow' && list !== 'green') throw new UsageError(list ? `unknown list "${shown(list, 40)}" (allow or green)` : 'missing list (allow or green)')
  if (kind !== 'ip' && kind !== 'domain') throw new UsageError(kind ? `unknown list kind "${shown(kind, 40)}" (ip or domain)` : 'missing list kind (ip or domain)')
  if (source === undefined) throw new UsageError('missing the source name')
  if (!SOURCE_NAME.test(source)) throw new UsageError(`invalid source name "${shown(source, 40)}" (a-z, 0-9, ".", "_", "-", at most 32 characters)`)
  return { list, kind, source }
}

/** --max-rejected N: a whole number. */
export function maxRejected(text: string | undefined): number {
  if (text === undefined) return 0
  if (!/^\d{1,9}$/.test(text)) throw new UsageError('--max-rejected must be a whole number')
  return Number(text)
}

export type LineCheck = { entry: string; private?: string } | { error: string }

export interface LintOptions {
  list: ListName
  kind: ListKind
  force: boolean
  /** mx6-receive skips private peers ([main] skip_private): private-only IP entries get a note. */
  skipPrivate: boolean
  /** This host's IPv6 addresses, found on first use. */
  hostAddresses?: Set<string>
}

/** One entry as the file gives it: its canonical form, or why it is rejected (the same checks as add). */
export function lintEntry(text: string, o: LintOptions): LineCheck {
  const c = checkListEntry(o.kind, text)
  if (c.status === 'invalid') return { error: `${quote(text, 80)}: ${c.problem}` }
  if (c.status === 'ambiguous') return { error: `${quote(text, 80)}: ${c.problem}; did you mean ${c.suggestion}?` }
  if (o.kind !== 'ip') return { entry: c.canonical }
  const broad = o.force ? null : needsForce(o.list, c.canonical)
  if (broad) return { error: broad }
  const inert = o.skipPrivate ? privateEntry(c.canonical, o) : null
  return inert ? { entry: c.canonical, private: inert } : { entry: c.canonical }
}

/**
 * privateOnly, fast for the common case (a million lines): global unicast (2000::/3) never
 * overlaps the private ranges, so such an entry is private only when it is one of this
 * host's own addresses (listed once per run, not once per line).
 */
function privateEntry(canonical: string, o: LintOptions): string | null {
  if (!/^[23]/.test(canonical)) return privateOnly(canonical)
  if (canonical.includes('/')) return null
  o.hostAddresses ??= hostAddresses()
  return o.hostAddresses.has(canonical) ? 'an address of this host' : null
}

function hostAddresses(): Set<string> {
  const out = new Set<string>()
  for (const a of Object.values(os.networkInterfaces()).flat()) {
    const p = a ? classifyPeer(a.address) : null
    if (p?.family === 'ipv6') out.add(p.canonical)
  }
  return out
}

export interface Rejected {
  line: number
  reason: string
}

/** What reading the file found (entries go to Redis as they come; only the figures stay here). */
export class ReadTally {
  lines = 0
  entries = 0
  /** Entries written in canonical form from another spelling. */
  rewritten = 0
  /** Accepted IP entries that only cover peers Haraka calls private. */
  private = 0
  rejectedCount = 0
  /** The first SHOWN_REJECTED rejected lines. */
  readonly rejected: Rejected[] = []
  /** Feeds one raw line; returns the canonical entry to stage, or null. */
  feed(raw: string, o: LintOptions): string | null {
    this.lines++
    if (raw.length > MAX_LINE) {
      this.reject(`line longer than ${MAX_LINE} characters`)
      return null
    }
    const text = lineText(raw)
    if (text === null) return null
    const c = lintEntry(text, o)
    if ('error' in c) {
      this.reject(c.error)
      return null
    }
    this.entries++
    if (c.entry !== text) this.rewritten++
    if (c.private) this.private++
    return c.entry
  }
  private reject(reason: string): void {
    this.rejectedCount++
    if (this.rejected.length < SHOWN_REJECTED) this.rejected.push({ line: this.lines, reason })
  }
  /** stderr lines for the rejected lines: `<file>:<line>: <reason>`, the first SHOWN_REJECTED, then how many more. */
  report(file: string): string[] {
    const out = this.rejected.map((r) => `${file}:${r.line}: ${r.reason}`)
    const more = this.rejectedCount - this.rejected.length
    if (more > 0) out.push(`… and ${more} more`)
    return out
  }
}

/** Whether the run may go on: rejected lines within --max-rejected (default 0: strict). */
export function withinRejected(rejected: number, maxRejected: number): boolean {
  return rejected <= maxRejected
}

/**
 * Splits a stream of text chunks into lines, a chunk's worth at a time (one await per
 * chunk, not per line), without holding more than one chunk and one partial line: a line
 * longer than MAX_LINE is not accumulated, its rest is dropped and it comes out as a
 * too-long line. A BOM at the start and the CR of CRLF are removed.
 */
export async function* lineBatches(chunks: AsyncIterable<string | Buffer>): AsyncGenerator<string[]> {
  const TOO_LONG = 'x'.repeat(MAX_LINE + 1)
  const cut = (l: string) => (l.endsWith('\r') ? l.slice(0, -1) : l)
  let carry = ''
  let long = false
  let first = true
  for await (const chunk of chunks) {
    let s = typeof chunk === 'string' ? chunk : chunk.toString('utf8')
    if (first) {
      s = s.replace(/^\ufeff/, '')
      first = false
    }
    const out: string[] = []
    let start = 0
    for (let nl = s.indexOf('\n'); nl !== -1; nl = s.indexOf('\n', start)) {
      out.push(long ? TOO_LONG : cut(carry + s.slice(start, nl)))
      carry = ''
      long = false
      start = nl + 1
    }
    if (!long) {
      carry += s.slice(start)
      if (carry.length > MAX_LINE + 1) {
        long = true
        carry = ''
      }
    }
    if (out.length) yield out
  }
  if (long) yield [TOO_LONG]
  else if (carry !== '') yield [cut(carry)]
}

/** What one run did (or, with --dry-run, would do). */
export interface Figures {
  list: ListName
  kind: ListKind
  source: string
  added: number
  removed: number
  kept: number
  /** In the file, but the field is the operator's or another source's: left alone. */
  ownedElsewhere: number
  /** In the file and in the source set, but the operator removed it from the list: not added back. */
  withheld: number
  rejected: number
  duplicates: number
  lines: number
  entries: number
  rewritten: number
  private: number
  /** Entries the source owns after the run. */
  owned: number
  seconds: number
  /** How long the apply script held Redis (seconds). */
  scriptSeconds: number
  dryRun: boolean
}

/** The figures line: `sync <list> <kind> <source>: added A, removed R, ... (N lines, T s)`. */
export function figuresLine(f: Figures): string {
  const n = (x: number) => x.toLocaleString('en-US')
  const what = `added ${n(f.added)}, removed ${n(f.removed)}, kept ${n(f.kept)}, owned elsewhere ${n(f.ownedElsewhere)}, withheld ${n(f.withheld)}, rejected ${n(f.rejected)}, duplicates ${n(f.duplicates)}`
  return `sync ${f.list} ${f.kind} ${f.source}${f.dryRun ? ' (dry run: nothing changed)' : ''}: ${what} (${n(f.lines)} lines, ${f.seconds.toFixed(1)} s)`
}

/** The progress line on a terminal. */
export function progressLine(lineCount: number, seconds: number): string {
  const rate = seconds > 0 ? Math.round(lineCount / seconds) : 0
  return `reading: ${lineCount.toLocaleString('en-US')} lines (${rate.toLocaleString('en-US')} lines/s)`
}
