// Whether a list entry (IPv6 address or CIDR, domain, host, AS number) is in the one form
// that matches, another spelling of it, a fix that needs a decision, or garbage. Shared by
// mx6ctl (add, ls, lint) and mx6-receive's periodic lint scan, so both say the same.
import { canonicalDomain, isPublicSuffix } from './domain'
import { checkV6Entry, classifyPeer } from './ip'

export type ListKind = 'ip' | 'domain' | 'host' | 'asn'
export const KINDS: readonly ListKind[] = ['ip', 'domain', 'host', 'asn']

export type EntryCheck =
  /** Already canonical: matches as written. */
  | { status: 'canonical'; canonical: string }
  /** Another spelling of the same entry: rewriting it changes nothing but makes it match. */
  | { status: 'fixable'; canonical: string; problem: string }
  /** A fix exists but would change what the entry covers (host bits, zone id): the operator decides. */
  | { status: 'ambiguous'; suggestion: string; problem: string }
  /** Garbage: can never match. */
  | { status: 'invalid'; problem: string }

export const MAX_ASN = 4294967295

/**
 * Checks a list entry as typed or as found in Redis. IPv6 via checkV6Entry,
 * domains and hosts via canonicalDomain, AS numbers digits only ("AS64500",
 * asdot "1.10" and leading zeros are other spellings).
 */
export function checkListEntry(kind: ListKind, text: string): EntryCheck {
  if (kind === 'ip') return checkIp(text)
  if (kind === 'asn') return checkAsn(text)
  return checkName(text)
}

function checkIp(text: string): EntryCheck {
  const c = checkV6Entry(text)
  if (c.ok) return { status: 'canonical', canonical: c.canonical }
  if (!c.fix) return { status: 'invalid', problem: c.error }
  const raw = String(text).trim()
  const addr = classifyPeer(raw.split('/')[0])
  // Same address and prefix, only spelt differently: safe to rewrite.
  if (!raw.includes('%') && addr?.family === 'ipv6' && addr.canonical === c.fix.split('/')[0]) return { status: 'fixable', canonical: c.fix, problem: c.error }
  return { status: 'ambiguous', suggestion: c.fix, problem: c.error }
}

function checkName(text: string): EntryCheck {
  const d = canonicalDomain(text)
  if (!d) return { status: 'invalid', problem: domainProblem(String(text)) }
  if (isPublicSuffix(d)) return { status: 'invalid', problem: `${d} is a public suffix: an entry covers its subdomains, so it would cover every domain under it` }
  if (d === text) return { status: 'canonical', canonical: d }
  const why: string[] = []
  const t = String(text).trim()
  if (t !== text) why.push('surrounding white space')
  if (t.endsWith('.')) why.push('trailing dot')
  if (/[^\x00-\x7f]/.test(t)) why.push('U-label converted to A-label')
  if (t !== t.toLowerCase() && !/[^\x00-\x7f]/.test(t)) why.push('upper case')
  return { status: 'fixable', canonical: d, problem: `not in canonical form (${why.join(', ') || 'lower-case A-label'})` }
}

function domainProblem(t: string): string {
  const s = t.trim()
  if (s.startsWith('*.') || s.startsWith('.')) return 'not a valid domain name (no wildcards: an entry already covers its subdomains)'
  if (s.includes('@')) return 'not a valid domain name (a domain, not an address: no @)'
  if (s.includes('://') || s.includes('/')) return 'not a valid domain name (a name, not a URL)'
  if (/^[\d.]+$/.test(s) || s.includes(':')) return 'not a valid domain name (addresses belong in the ip list)'
  if (s !== '' && !s.includes('.')) return 'not a valid domain name (needs at least two labels)'
  return 'not a valid domain name'
}

function checkAsn(text: string): EntryCheck {
  const t = String(text)
  const plain = /^\s*(?:as\s?)?(\d{1,20})\s*$/i.exec(t)
  const asdot = /^\s*(?:as\s?)?(\d{1,5})\.(\d{1,5})\s*$/i.exec(t)
  let n: number
  if (plain) n = Number(plain[1])
  else if (asdot) {
    const [hi, lo] = [Number(asdot[1]), Number(asdot[2])]
    if (hi > 65535 || lo > 65535) return { status: 'invalid', problem: 'not an AS number (asdot parts are at most 65535)' }
    n = hi * 65536 + lo
  } else return { status: 'invalid', problem: 'not an AS number (digits only, e.g. 64500)' }
  if (n === 0) return { status: 'invalid', problem: 'AS 0 is reserved (RFC 7607) and never an origin' }
  if (n > MAX_ASN) return { status: 'invalid', problem: `AS number out of range (1-${MAX_ASN})` }
  const canonical = String(n)
  if (canonical === t) return { status: 'canonical', canonical }
  return { status: 'fixable', canonical, problem: 'not in canonical form (digits only, no "AS", no leading zeros)' }
}
