// Operational evidence: does deferred IPv6 mail come back over IPv4, how fast,
// and who never retries? Fingerprints of deferred attempts (pure helpers here;
// mx6-receive writes them, mx6-learn matches IPv4 arrivals, mx6ctl reports).
import crypto from 'node:crypto'
import { candidatePrefixes } from './ip'
import { normaliseMailbox } from './mailbox'

/** What is stored for one deferred (or fallen-back) IPv6 attempt. */
export interface Attempt {
  /** Unix seconds of the (first) deferral. */
  time: number
  phase: 'rcpt' | 'data_post'
  /** would-defer / would-fallback: recorded in mode=observe, where the mail was accepted over IPv6. */
  verdict: 'defer' | 'fallback' | 'would-defer' | 'would-fallback'
  reason: string
  mailFrom: string
  rcpts: string[]
  /** The peer's /64. */
  net: string
  /** Its forward-confirmed name, if known. */
  host: string
  /** The sending domain: the authenticated From domain, else the MAIL FROM domain. */
  domain: string
  /** Octets received over IPv6 before a data_post deferral (0 at RCPT). */
  size: number
  /** Set when the same message came back over IPv4. */
  returned?: number
  returnedFrom?: string
}

/** SHA-256 in hex: crypto.hash (Node 20.12 and later) makes no Hash object; createHash before it. */
const sha256: (text: string) => string = typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text).digest('hex')

function hash(text: string): string {
  return sha256(text).slice(0, 32)
}

function norm(address: string, delimiter: string): string {
  const at = address.lastIndexOf('@')
  if (at <= 0) return address.toLowerCase()
  return normaliseMailbox(address.slice(0, at), address.slice(at + 1), delimiter)?.address ?? address.toLowerCase()
}

/**
 * The envelope: MAIL FROM and the recipient set, compared case-insensitively,
 * without sub-address tags and in any order (senders reorder recipients).
 */
export function envelopeFingerprint(mailFrom: string, rcpts: string[], delimiter = '+'): string {
  const set = [...new Set(rcpts.map((r) => norm(r, delimiter)))].sort()
  return hash(`${mailFrom ? norm(mailFrom, delimiter) : '<>'}\n${set.join('\n')}`)
}

/** The Message-ID, without angle brackets and surrounding space; null when there is none. */
export function messageIdFingerprint(messageId: string | undefined | null): string | null {
  const id = (messageId ?? '').trim().replace(/^<|>$/g, '').trim()
  return id && id.length <= 998 ? hash(`mid\n${id}`) : null
}

export function net64(canonicalV6: string): string {
  return candidatePrefixes(canonicalV6)[128 - 64]
}

/** Flat hash fields for Redis, and back. */
export function toFields(a: Attempt): Record<string, string> {
  const f: Record<string, string> = {
    time: String(a.time),
    phase: a.phase,
    verdict: a.verdict,
    reason: a.reason.slice(0, 300),
    mail_from: a.mailFrom,
    rcpts: a.rcpts.slice(0, 50).join(','),
    net: a.net,
    host: a.host,
    domain: a.domain,
    size: String(a.size),
  }
  return f
}

export function fromFields(f: Record<string, string>): Attempt | null {
  const time = Number(f.time)
  if (!Number.isFinite(time)) return null
  return {
    time,
    phase: f.phase === 'data_post' ? 'data_post' : 'rcpt',
    verdict: f.verdict === 'fallback' || f.verdict === 'would-defer' || f.verdict === 'would-fallback' ? f.verdict : 'defer',
    reason: f.reason ?? '',
    mailFrom: f.mail_from ?? '',
    rcpts: f.rcpts ? f.rcpts.split(',') : [],
    net: f.net ?? '',
    host: f.host ?? '',
    domain: f.domain ?? '',
    size: Number(f.size) || 0,
    ...(f.returned ? { returned: Number(f.returned), returnedFrom: f.returned_from ?? '' } : {}),
  }
}

export interface SenderStats {
  sender: string
  deferred: number
  returned: number
  neverReturned: number
}

export interface FollowupReport {
  /** Attempts recorded in mode=observe: accepted over IPv6, so never expected back (not in the figures below). */
  observed: number
  deferred: number
  returned: number
  share: number
  delay: { p50: number; p90: number; max: number }
  bytesBeforeDataDeferral: number
  byDomain: SenderStats[]
  byHost: SenderStats[]
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

function group(attempts: Attempt[], key: (a: Attempt) => string): SenderStats[] {
  const m = new Map<string, SenderStats>()
  for (const a of attempts) {
    const k = key(a) || '(unknown)'
    const s = m.get(k) ?? { sender: k, deferred: 0, returned: 0, neverReturned: 0 }
    s.deferred++
    if (a.returned !== undefined) s.returned++
    else s.neverReturned++
    m.set(k, s)
  }
  return [...m.values()].sort((a, b) => b.deferred - a.deferred || a.sender.localeCompare(b.sender))
}

/** mode=observe records what it would have deferred; that mail was accepted, so it never comes back. */
function wasDeferred(a: Attempt): boolean {
  return a.verdict === 'defer' || a.verdict === 'fallback'
}

export function report(all: Attempt[]): FollowupReport {
  const attempts = all.filter(wasDeferred)
  const back = attempts.filter((a) => a.returned !== undefined)
  const delays = back.map((a) => Math.max(0, a.returned! - a.time)).sort((x, y) => x - y)
  return {
    observed: all.length - attempts.length,
    deferred: attempts.length,
    returned: back.length,
    share: attempts.length ? back.length / attempts.length : 0,
    delay: { p50: pct(delays, 50), p90: pct(delays, 90), max: delays.length ? delays[delays.length - 1] : NaN },
    bytesBeforeDataDeferral: attempts.filter((a) => a.phase === 'data_post').reduce((s, a) => s + a.size, 0),
    byDomain: group(attempts, (a) => a.domain),
    byHost: group(attempts, (a) => a.host || a.net),
  }
}

export interface Suggestion {
  /** The ready-to-run command (never run by the suite). */
  command: string
  why: string
}

/**
 * Senders none of whose deferred mail came back within `windowSec`: candidates for
 * the never-retry greenlist, by forward-confirmed name when known, else by /64.
 */
export function suggestions(attempts: Attempt[], nowSec: number, windowSec: number): Suggestion[] {
  const bySender = new Map<string, Attempt[]>()
  for (const a of attempts.filter(wasDeferred)) {
    const k = a.host ? `host ${a.host}` : `ip ${a.net}`
    bySender.set(k, [...(bySender.get(k) ?? []), a])
  }
  const out: Suggestion[] = []
  for (const [k, list] of bySender) {
    if (list.some((a) => a.returned !== undefined)) continue
    const old = list.filter((a) => nowSec - a.time >= windowSec)
    if (old.length === 0) continue
    const [kind, id] = k.split(' ')
    const domains = [...new Set(list.map((a) => a.domain).filter(Boolean))].join(',') || 'unknown'
    const safe = id.replace(/[^A-Za-z0-9.:/_-]/g, '')
    out.push({
      command: `mx6ctl green ${kind} add ${safe} "never retried over IPv4 (${old.length} deferred, domain ${domains.replace(/[^A-Za-z0-9.,_-]/g, '')})"`,
      why: `${old.length} deferred message(s) from ${id} (${domains}) never came back over IPv4 within ${Math.round(windowSec / 3600 * 10) / 10} h`,
    })
  }
  return out
}
