// ARC (RFC 8617) of a received message: is the chain intact, who sealed it last, and what did
// that sealer find about the From domain. mailauth validates (as its authenticate() does):
// dkimVerify() over the raw message verifies the newest ARC-Message-Signature like a DKIM
// signature, then arc() checks the chain's structure and every ARC-Seal. Whether the sealer is
// trusted (mx6:arc:trusted) is the caller's decision.
// The two modules themselves, not mailauth's index: that also loads BIMI's certificate stack,
// which costs every message Haraka handles, IPv4 included (docs/performance.md).
import { arc as verifyArc } from 'mailauth/lib/arc'
import { dkimVerify } from 'mailauth/lib/dkim/verify'
import parseDkimHeaders from 'mailauth/lib/parse-dkim-headers'
import { aligned, canonicalDomain } from '../lib/domain'
import { commentText, MailauthDns, type TxtResolver } from './mailauth-dns'

export type { TxtResolver } from './mailauth-dns'

export interface ArcOutcome {
  /** mailauth's chain result: pass (cv=pass at every instance and the AMS of the newest verifies), fail, none (no ARC headers). */
  chain: 'pass' | 'fail' | 'none'
  /** A fail that a DNS error or the timeout caused: it may pass later (RFC 8617 knows no temperror). */
  temporary: boolean
  /** Instance number of the newest ARC set; 0 without one. */
  instance: number
  /** d= of the newest ARC-Seal, canonical; null without one. */
  sealer: string | null
  /**
   * Only for chain=pass: the newest ARC-Authentication-Results says dmarc=pass (for `fromDomain`
   * when it names header.from), or has an SPF or DKIM pass aligned (relaxed) with `fromDomain`:
   * "dmarc=pass" / "dkim=pass header.d=example.com" / "spf=pass smtp.mailfrom=example.com"; else null.
   */
  authenticated: string | null
  /** A line for the log and results: "arc=pass i=2 sealer=fwd.test (dmarc=pass)" or why not. */
  reason: string
}

/** The part of mailauth's verification data this module reads. */
interface ArcData {
  chain: unknown
  lastEntry?: { i: number }
  error?: Error
}

/** A result in mailauth's parsed ARC-Authentication-Results (its arc() moves each value to `result`). */
interface ResInfo {
  result?: unknown
  header?: Record<string, unknown>
  smtp?: Record<string, unknown>
}

interface ParsedAar {
  dmarc?: ResInfo
  spf?: ResInfo
  dkim?: ResInfo[]
}

const NONE: ArcOutcome = Object.freeze({ chain: 'none', temporary: false, instance: 0, sealer: null, authenticated: null, reason: 'arc=none (no ARC headers)' })

/**
 * Validates the message's ARC chain; never rejects. `message` is the whole message as received
 * (header and body, as the peer sent them): the AMS signs both.
 */
export async function evaluateArc(message: Buffer, fromDomain: string | null, resolver: TxtResolver, timeoutMs: number): Promise<ArcOutcome> {
  // Most mail has no ARC: a look at the header spares parsing and hashing the message.
  if (!hasArcHeader(message)) return { ...NONE }
  const dns = new MailauthDns(resolver, timeoutMs)
  let sealer: string | null = null
  let instance = 0
  try {
    // Also verifies the message's DKIM-Signatures (one key lookup each): dkimVerify has no switch for it.
    const verified = await dkimVerify(message, { resolver: dns.resolve })
    const newest = newestSeal(verified.headers?.parsed ?? [])
    sealer = newest.sealer
    instance = newest.instance
    const result = await verifyArc(verified.arc as unknown as Parameters<typeof verifyArc>[0], { resolver: dns.resolve })
    const chain = result.status.result === 'pass' ? 'pass' : result.status.result === 'none' ? 'none' : 'fail'
    if (chain === 'none') return { ...NONE, reason: 'arc=none (no valid ARC set)' }
    if (typeof result.i === 'number') instance = result.i
    const at = `arc=${chain} i=${instance} sealer=${sealer ?? '?'}`
    if (chain === 'pass') {
      const authenticated = authenticatedBy(result.authenticationResults as ParsedAar | undefined, canonicalDomain(fromDomain))
      return { chain, temporary: false, instance, sealer, authenticated, reason: `${at} (${authenticated ?? 'no aligned pass in its ARC-Authentication-Results'})` }
    }
    // mailauth's words for the failure; a seal key it could not fetch it does not name.
    const noKey = [...dns.answers].filter(([name, a]) => 'none' in a && sealer && name.endsWith(`._domainkey.${sealer}`)).map(([name]) => `no key at ${name}`)
    const why = [result.status.comment, result.signature ? result.signature.status?.comment : (verified.arc as unknown as ArcData)?.error?.message, ...noKey]
    const words = [...new Set(why.filter((w): w is string => typeof w === 'string' && w.length > 0))]
    return failed(dns, sealer, instance, `${at}: ${commentText(words.join(', ') || 'chain does not validate')}`)
  } catch (err) {
    // mailauth throws on input it cannot read; the chain then is not shown to be intact.
    return failed(dns, sealer, instance, `arc=fail: ${commentText((err as Error)?.message || 'unreadable message')}`)
  }
}

function failed(dns: MailauthDns, sealer: string | null, instance: number, reason: string): ArcOutcome {
  const temporary = dns.failure !== null
  return { chain: 'fail', temporary, instance, sealer, authenticated: null, reason: temporary ? `${reason} (DNS: ${commentText(dns.failure)})` : reason }
}

/** Whether the message header has an ARC field (RFC 8617 section 4.1), without parsing the message. */
export function hasArcHeader(message: Buffer): boolean {
  const crlf = message.indexOf('\r\n\r\n')
  const lf = message.subarray(0, crlf < 0 ? message.length : crlf).indexOf('\n\n')
  const end = crlf < 0 ? lf : lf < 0 ? crlf : Math.min(crlf, lf)
  const header = message.subarray(0, end < 0 ? message.length : end).toString('latin1')
  return /(^|\n)arc-(seal|message-signature|authentication-results)[ \t]*:/i.test(header)
}

/** The highest instance's ARC-Seal (its d= and i=), also for a chain that does not validate. */
function newestSeal(parsed: ReadonlyArray<{ key: string; line: unknown }>): { sealer: string | null; instance: number } {
  let best = { sealer: null as string | null, instance: 0 }
  for (const row of parsed) {
    if (row.key !== 'arc-seal') continue
    const tags = parseDkimHeaders(String(row.line)).parsed as Record<string, { value?: unknown } | undefined>
    const i = Number(tags.i?.value)
    if (Number.isInteger(i) && i > best.instance) best = { sealer: canonicalDomain(tags.d?.value), instance: i }
  }
  return best
}

/**
 * What the newest ARC-Authentication-Results (parsed by mailauth) says for the From domain:
 * dmarc=pass first (the sealer judged alignment), then an aligned DKIM, then an aligned SPF pass
 * (RFC 7489 section 3.1, relaxed).
 */
export function authenticatedBy(aar: ParsedAar | undefined, from: string | null): string | null {
  if (!aar) return null
  const dmarc = aar.dmarc
  if (dmarc && word(dmarc.result) === 'pass') {
    const hf = dmarc.header?.from
    // A dmarc=pass about another From domain than this message's is not about this message.
    if (!from || hf === undefined || canonicalDomain(hf) === from) return 'dmarc=pass'
  }
  if (!from) return null
  for (const dkim of Array.isArray(aar.dkim) ? aar.dkim : []) {
    if (word(dkim.result) !== 'pass') continue
    const d = canonicalDomain(dkim.header?.d ?? domainOf(dkim.header?.i))
    if (d && aligned(d, from, 'relaxed')) return `dkim=pass header.d=${d}`
  }
  const spf = aar.spf
  if (spf && word(spf.result) === 'pass') {
    const d = canonicalDomain(domainOf(spf.smtp?.mailfrom))
    if (d && aligned(d, from, 'relaxed')) return `spf=pass smtp.mailfrom=${d}`
  }
  return null
}

function word(v: unknown): string {
  return typeof v === 'string' ? v.toLowerCase() : ''
}

/** The domain of "user@domain", "@domain" or "domain". */
function domainOf(v: unknown): string | undefined {
  return typeof v === 'string' ? v.slice(v.lastIndexOf('@') + 1) : undefined
}
