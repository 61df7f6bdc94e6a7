// IP address handling: peer classification, RFC 5952 canonical text, CIDR candidates.
import ipaddr from 'ipaddr.js'
import { memo } from './memo'

export type Family = 'ipv4' | 'ipv6'

export interface PeerAddress {
  readonly family: Family
  /** RFC 5952 text for IPv6 (zone id dropped), dotted quad for IPv4. */
  readonly canonical: string
}

/**
 * Classifies a peer address. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is IPv4: the
 * peer really connected over IPv4 to a dual-stack socket. Returns null for text
 * that is not an address at all.
 */
export function classifyPeer(text: string): PeerAddress | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return null
  return parsePeer(text)
}

const parsePeer = memo(4096, function parse(text: string): PeerAddress | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6
  try {
    addr = ipaddr.parse(text.trim())
  } catch {
    return null
  }
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6
    if (v6.isIPv4MappedAddress()) return Object.freeze({ family: 'ipv4', canonical: v6.toIPv4Address().toString() })
    return Object.freeze({ family: 'ipv6', canonical: rfc5952(v6) })
  }
  return Object.freeze({ family: 'ipv4', canonical: addr.toString() })
})

function rfc5952(v6: ipaddr.IPv6): string {
  // toRFC5952String keeps a zone id; list entries never carry one.
  return (ipaddr.fromByteArray(v6.toByteArray()) as ipaddr.IPv6).toRFC5952String()
}

/** RFC 5952 text of eight 16-bit groups: lower-case hex, the longest run (2+) of zero groups as "::". */
function groupsText(g: number[]): string {
  let bestAt = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i + 1
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) {
      bestAt = i
      bestLen = j - i
    }
    i = j
  }
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      out += '::'
      i += bestLen - 1
      continue
    }
    if (out !== '' && !out.endsWith(':')) out += ':'
    out += g[i].toString(16)
  }
  return out
}

/** The address's eight 16-bit groups (from its 16 bytes). */
function wordsOf(bytes: number[]): number[] {
  const words: number[] = []
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i] << 8) | bytes[2 * i + 1])
  return words
}

/** RFC 5952 text of `words` masked to `len` bits (`groups`: scratch space for the masked groups). */
function maskedText(words: number[], len: number, groups: number[]): string {
  for (let i = 0; i < 8; i++) {
    const keep = len - i * 16
    groups[i] = keep >= 16 ? words[i] : keep <= 0 ? 0 : words[i] & ((0xffff << (16 - keep)) & 0xffff)
  }
  return groupsText(groups)
}

/** Canonical text of the address masked to `len` bits: a single address (/128) carries no suffix. */
function networkText(bytes: number[], len: number): string {
  const text = maskedText(wordsOf(bytes), len, [0, 0, 0, 0, 0, 0, 0, 0])
  return len === 128 ? text : `${text}/${len}`
}

/**
 * How many addresses' candidates are remembered. Each costs about 10 KB (one flat string
 * of the 129 prefixes and the array of slices of it), so at most about 10 MB however many
 * distinct peers connect; an address not among the last ones costs one rebuild (tens of
 * microseconds) when Redis must be asked about it again (the peer list cache finds a
 * repeat peer by its address, without its candidates).
 */
export const PREFIX_MEMO_SIZE = 1024

/** The candidates of an address joined by newlines (the peer lookup script's one argument), by array. */
const joinedOf = new WeakMap<readonly string[], string>()

/**
 * Every canonical CIDR entry that would cover `canonicalV6`, longest first
 * (/128 ... /0): 129 hash fields, looked up in one script call whatever the list size.
 * Recently used peers are remembered: the same array for the same address. The texts are
 * slices of one string, the joined form (see joinedPrefixes), not 129 separate strings.
 */
export const candidatePrefixes = memo(PREFIX_MEMO_SIZE, (canonicalV6: string): readonly string[] => {
  const words = wordsOf(ipaddr.IPv6.parse(canonicalV6).toByteArray())
  const groups = [0, 0, 0, 0, 0, 0, 0, 0]
  const ends: number[] = []
  let joined = ''
  for (let len = 128; len >= 0; len--) {
    const text = maskedText(words, len, groups)
    joined += len === 128 ? text : `\n${text}/${len}`
    ends.push(joined.length)
  }
  const out: string[] = []
  for (let i = 0, from = 0; i < ends.length; from = ends[i++] + 1) out.push(joined.slice(from, ends[i]))
  const list = Object.freeze(out)
  joinedOf.set(list, joined)
  return list
})

/**
 * Candidates joined by newlines: the string they were cut from when they come from
 * candidatePrefixes (built once per array), else joined once per array.
 */
export function joinedPrefixes(candidates: readonly string[]): string {
  let s = joinedOf.get(candidates)
  if (s === undefined) {
    s = candidates.join('\n')
    joinedOf.set(candidates, s)
  }
  return s
}

export type CidrCheck =
  | { ok: true; canonical: string }
  | { ok: false; error: string; fix?: string }

/**
 * Validates an IPv6 list entry as typed by an operator and says what its
 * canonical form is. Only canonical entries ever match (lookups send canonical
 * candidates), so anything else is reported with the fix.
 */
export function checkV6Entry(text: string): CidrCheck {
  const raw = String(text)
  const [addrPart, lenPart, extra] = raw.trim().split('/')
  if (extra !== undefined) return { ok: false, error: 'more than one "/"' }
  let addr: ipaddr.IPv6
  try {
    const parsed = ipaddr.parse(addrPart)
    if (parsed.kind() !== 'ipv6') return { ok: false, error: 'not an IPv6 address (IPv4 peers are never filtered)' }
    addr = parsed as ipaddr.IPv6
  } catch {
    return { ok: false, error: 'not an IPv6 address or CIDR' }
  }
  if (addr.isIPv4MappedAddress()) return { ok: false, error: 'IPv4-mapped address: such peers are IPv4 and never filtered' }
  if (addr.zoneId) return { ok: false, error: 'zone id (%...) not allowed', fix: rfc5952(addr) }
  let len = 128
  if (lenPart !== undefined) {
    if (!/^\d{1,3}$/.test(lenPart) || Number(lenPart) > 128) return { ok: false, error: `bad prefix length "/${lenPart}"` }
    len = Number(lenPart)
  }
  const canonical = networkText(addr.toByteArray(), len)
  if (canonical === raw) return { ok: true, canonical }
  const hostBits = canonical.split('/')[0] !== rfc5952(addr)
  let error = 'not in canonical form (RFC 5952, lower case)'
  if (hostBits) error = 'host bits set below the prefix length'
  else if (len === 128 && lenPart !== undefined) error = 'a single address is written without /128'
  return { ok: false, error, fix: canonical }
}

export interface Listener {
  /** Canonical IPv6 address of the listener. */
  ip: string
  /** null: any port on that address. */
  port: number | null
}

/** Parses an MX6 listener as configured: "2001:db8::6" or "[2001:db8::6]:25". */
export function parseListener(text: string): Listener | { error: string } {
  const t = text.trim()
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(t)
  const addr = m ? m[1] : t
  const port = m ? Number(m[2]) : null
  if (port !== null && (port < 1 || port > 65535)) return { error: `bad port in "${t}"` }
  const peer = classifyPeer(addr)
  if (!peer || peer.family !== 'ipv6' || addr.includes('/')) return { error: `"${t}" is not an IPv6 address (MX6 listeners are IPv6 only)` }
  return { ip: peer.canonical, port }
}

export function matchesListener(localIp: string, localPort: number, listeners: readonly Listener[]): boolean {
  if (listeners.length === 0) return false
  const local = classifyPeer(localIp)
  if (!local || local.family !== 'ipv6') return false
  return listeners.some((l) => l.ip === local.canonical && (l.port === null || l.port === localPort))
}

/** The 32 nibbles of an IPv6 address, least significant first, dot-separated (RFC 3596 section 2.5). */
export const reverseNibbles = memo(4096, (canonicalV6: string): string => {
  const hex = ipaddr.IPv6.parse(canonicalV6)
    .toByteArray()
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
  return hex.split('').reverse().join('.')
})
