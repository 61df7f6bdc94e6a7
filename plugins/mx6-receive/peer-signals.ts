// Greenlisting signals about the IPv6 peer itself, from DNS: forward-confirmed
// reverse DNS (with the HELO name) and the origin AS. Each returns a classified
// outcome; a DNS failure means "signal absent", never a reason to accept.
import { orgDomain } from '../lib/domain'
import type { CachingResolver, Lookup } from '../lib/dns'
import { classifyPeer, reverseNibbles } from '../lib/ip'
import { setBounded } from '../lib/memo'
import { cachedZone, queryZones, type ZoneConfig, type ZoneResult } from './reputation'

export type Outcome = 'pass' | 'fail' | 'skip' | 'err'

export interface FcrdnsResult {
  outcome: Outcome
  /** PTR names that resolve back (AAAA) to the peer. */
  confirmed: string[]
  detail: string
}

export interface AsnResult {
  outcome: Outcome
  asns: string[]
  detail: string
}

export interface PeerSignals {
  fcrdns: FcrdnsResult
  asn: AsnResult
  /** The answers of the providers' IPv6 allowlist zones, in the configured order (absent or empty: none configured). */
  providers?: readonly ZoneResult[]
}

/** At most this many PTR names are checked, like Haraka's fcrdns plugin limits it. */
const MAX_PTR = 5

export type HeloMatch = 'exact' | 'domain'

function heloMatches(helo: string, name: string, mode: HeloMatch): boolean {
  if (helo === name) return true
  // "domain": the HELO name and the confirmed name have the same organizational
  // domain (Public Suffix List), e.g. HELO mail.example.com for PTR out1.example.com.
  return mode === 'domain' && helo.includes('.') && orgDomain(helo) === orgDomain(name)
}

const ptrName = (ip: string): string => `${reverseNibbles(ip)}.ip6.arpa`

/** After the PTR answer: the outcome already, or the names whose AAAA answers decide it. */
function fromPtr(ptr: Lookup<string>): FcrdnsResult | string[] {
  if ('error' in ptr) return { outcome: 'err', confirmed: [], detail: `PTR lookup: ${ptr.error}` }
  if ('none' in ptr) return { outcome: 'fail', confirmed: [], detail: `no PTR (${ptr.none})` }
  return [...new Set(ptr.ok)].slice(0, MAX_PTR)
}

/** PTR names of the peer that resolve back (AAAA) to it; the HELO comparison comes later. */
export async function confirmedNames(ip: string, dns: CachingResolver): Promise<FcrdnsResult> {
  const names = fromPtr(await dns.ptr(ptrName(ip)))
  if (!Array.isArray(names)) return names
  return fromForward(ip, names, await Promise.all(names.map(async (n) => [n, await dns.aaaa(n)] as const)))
}

/** The same from the resolver's cache alone (no promise); undefined when an answer is not cached. */
function confirmedNamesCached(ip: string, dns: CachingResolver, until?: { at: number }): FcrdnsResult | undefined {
  const ptr = dns.cached(ptrName(ip), 'PTR', until)
  if (!ptr) return undefined
  const names = fromPtr(ptr)
  if (!Array.isArray(names)) return names
  const forward: Array<readonly [string, Lookup<string>]> = []
  for (const n of names) {
    const a = dns.cached(n, 'AAAA', until)
    if (!a) return undefined
    forward.push([n, a])
  }
  return fromForward(ip, names, forward)
}

function fromForward(ip: string, names: string[], forward: ReadonlyArray<readonly [string, Lookup<string>]>): FcrdnsResult {
  const confirmed = forward.filter(([, a]) => 'ok' in a && a.ok.some((addr) => classifyPeer(addr)?.canonical === ip)).map(([n]) => n)
  if (confirmed.length === 0) {
    const errs = forward.filter(([, a]) => 'error' in a)
    if (errs.length) return { outcome: 'err', confirmed, detail: `AAAA lookup of ${errs[0][0]} failed` }
    return { outcome: 'fail', confirmed, detail: `PTR ${names.join(',')} does not resolve back to ${ip}` }
  }
  return { outcome: 'pass', confirmed, detail: `forward-confirmed ${confirmed.join(',')}` }
}

/** The FCrDNS signal proper: a forward-confirmed name that matches the HELO/EHLO name. Pure. */
export function matchHelo(names: FcrdnsResult, helo: string | undefined, mode: HeloMatch): FcrdnsResult {
  if (names.outcome !== 'pass') return names
  const h = (helo ?? '').toLowerCase().replace(/\.$/, '')
  const match = names.confirmed.find((n) => heloMatches(h, n, mode))
  if (!match) return { outcome: 'fail', confirmed: names.confirmed, detail: `forward-confirmed ${names.confirmed.join(',')} but HELO "${h.slice(0, 100)}" differs` }
  return { outcome: 'pass', confirmed: names.confirmed, detail: `forward-confirmed ${match} matches HELO` }
}

export async function fcrdns(ip: string, helo: string | undefined, dns: CachingResolver, mode: HeloMatch): Promise<FcrdnsResult> {
  return matchHelo(await confirmedNames(ip, dns), helo, mode)
}

/** The origin-AS TXT name of an address in a Team Cymru style zone. */
const asnName = (ip: string, zone: string): string => `${reverseNibbles(ip)}.${zone}`

/**
 * Origin AS from a Team Cymru style zone: TXT at <nibbles>.<zone> reads
 * "15169 | 2001:4860::/32 | US | arin | 2005-03-14" (several AS numbers may
 * share the first field).
 */
export async function originAsn(ip: string, dns: CachingResolver, zone: string): Promise<AsnResult> {
  return fromTxt(await dns.txt(asnName(ip, zone)))
}

function fromTxt(txt: Lookup<string>): AsnResult {
  if ('error' in txt) return { outcome: 'err', asns: [], detail: `origin AS lookup: ${txt.error}` }
  if ('none' in txt) return { outcome: 'fail', asns: [], detail: `no origin AS (${txt.none})` }
  const asns = [...new Set(txt.ok.flatMap((t) => (t.split('|')[0] ?? '').trim().split(/\s+/)).filter((a) => /^\d{1,10}$/.test(a)))]
  if (asns.length === 0) return { outcome: 'fail', asns, detail: 'origin AS record unparseable' }
  return { outcome: 'pass', asns, detail: `origin AS ${asns.join(',')}` }
}

/**
 * The DNS part of the peer signals, started when the connection opens so the
 * lookups run while the client says EHLO and MAIL FROM; the HELO comparison is
 * applied at RCPT with matchHelo().
 */
export function gatherPeerSignals(ip: string, dns: CachingResolver, cfg: SignalsConfig): Promise<PeerSignals> {
  // A peer seen within the TTLs of its answers: computed from the resolver's cache at once.
  const known = cachedPeerSignals(ip, dns, cfg)
  return known ? Promise.resolve(known) : querySignals(ip, dns, cfg)
}

async function querySignals(ip: string, dns: CachingResolver, cfg: SignalsConfig): Promise<PeerSignals> {
  const [f, a, p] = await Promise.all([
    cfg.fcrdns ? confirmedNames(ip, dns) : SKIP_FCRDNS,
    cfg.asn ? originAsn(ip, dns, cfg.asnZone) : SKIP_ASN,
    cfg.zones?.length ? queryZones(cfg.zones, ip, dns) : NO_ZONES,
  ])
  return { fcrdns: f, asn: a, providers: p }
}

/**
 * The same from the resolver's cache alone, for a peer seen within the answers' TTLs:
 * no promise, no query. undefined when any answer needed is not cached. `until`: lowered
 * to the expiry of the first answer used to expire (see CachingResolver.cached).
 */
export function cachedPeerSignals(ip: string, dns: CachingResolver, cfg: SignalsConfig, until?: { at: number }): PeerSignals | undefined {
  const f = cfg.fcrdns ? confirmedNamesCached(ip, dns, until) : SKIP_FCRDNS
  if (!f) return undefined
  const txt = cfg.asn ? dns.cached(asnName(ip, cfg.asnZone), 'TXT', until) : undefined
  if (cfg.asn && !txt) return undefined
  const providers: ZoneResult[] = []
  for (const z of cfg.zones ?? NO_ZONE_CONFIG) {
    const r = cachedZone(z, ip, dns, until)
    if (!r) return undefined
    providers.push(r)
  }
  return { fcrdns: f, asn: txt ? fromTxt(txt) : SKIP_ASN, providers: providers.length ? providers : NO_ZONES }
}

/**
 * The peer signals of recent peers, each computed once from the resolver's cache and
 * kept (frozen) until the first answer it was computed from expires: a repeat peer's
 * connection then costs one map lookup instead of building its DNS names, reading the
 * cache and classifying the answers again. At most `max` peers (oldest dropped first);
 * one per resolver and settings (a config reload makes both anew).
 */
export class PeerSignalsMemo {
  private readonly memo = new Map<string, { signals: PeerSignals; until: number }>()
  constructor(
    readonly dns: CachingResolver,
    readonly cfg: SignalsConfig,
    private readonly max = 4096,
  ) {}

  /** The peer's signals from the memo or the resolver's cache (no promise); undefined when an answer is not cached. */
  cached(ip: string): PeerSignals | undefined {
    const hit = this.memo.get(ip)
    if (hit && this.dns.before(hit.until)) return hit.signals
    // Expired: made again below (as the newest entry) if the resolver's cache still can.
    if (hit) this.memo.delete(ip)
    const until = { at: Infinity }
    const signals = cachedPeerSignals(ip, this.dns, this.cfg, until)
    if (!signals) return undefined
    const kept = freezeSignals(signals)
    // Each new peer brings a new entry: the memo stays bounded however many there are.
    setBounded(this.memo, ip, { signals: kept, until: until.at }, this.max)
    return kept
  }

  /** The peer's signals: from the memo or the cache at once, else looked up. */
  gather(ip: string): Promise<PeerSignals> {
    const known = this.cached(ip)
    return known ? Promise.resolve(known) : querySignals(ip, this.dns, this.cfg)
  }
}

function freezeSignals(s: PeerSignals): PeerSignals {
  Object.freeze(s.fcrdns.confirmed)
  Object.freeze(s.asn.asns)
  for (const p of s.providers ?? NO_ZONES) Object.freeze(p)
  return Object.freeze({ fcrdns: Object.freeze(s.fcrdns), asn: Object.freeze(s.asn), providers: Object.freeze(s.providers ?? NO_ZONES) })
}

export interface SignalsConfig {
  fcrdns: boolean
  asn: boolean
  asnZone: string
  /** The providers' IPv6 allowlist zones (kind=ip). @default none */
  zones?: readonly ZoneConfig[]
}
const NO_ZONES: readonly ZoneResult[] = Object.freeze([])
const NO_ZONE_CONFIG: readonly ZoneConfig[] = Object.freeze([])
const SKIP_FCRDNS: FcrdnsResult = Object.freeze({ outcome: 'skip', detail: 'fcrdns disabled', confirmed: [] })
const SKIP_ASN: AsnResult = Object.freeze({ outcome: 'skip', detail: 'asn disabled', asns: [] })
