// Reputation providers' DNS allowlists: an IPv6 peer looked up as its 32 nibbles under a
// DNSWL-style zone, an authenticated domain as <domain>.<zone> under a DWL-style one. The
// operator maps each zone's answers to a verdict; anything that goes wrong (SERVFAIL, a
// timeout, the provider's "refused" answer) is "signal absent", never a reason to accept.
import ipaddr from 'ipaddr.js'
import type { CachingResolver, Lookup } from '../lib/dns'
import { printable } from '../lib/text'

export type ZoneKind = 'ip' | 'domain'

/** One octet of an answer pattern: [low, high] inclusive. */
type OctetRange = readonly [number, number]
/** An answer pattern, e.g. 127.0.*.1-2: four octet ranges. */
export type AnswerPattern = readonly [OctetRange, OctetRange, OctetRange, OctetRange]

export interface ZoneConfig {
  /** The operator's name for the provider ([provider:<name>]); in logs, results and stats. */
  name: string
  zone: string
  kind: ZoneKind
  trusted: readonly AnswerPattern[]
  green: readonly AnswerPattern[]
  /** The provider's own error answers (refused, over quota): the signal is absent. */
  error: readonly AnswerPattern[]
  /** How long a decision waits for this zone, in ms. */
  timeoutMs: number
}

/**
 * trusted / green: the mapping gave that verdict. listed: answered, but mapped to nothing
 * (e.g. dnswl trust 0). unlisted: NXDOMAIN or NODATA. absent: no usable answer (error).
 */
export type ZoneOutcome = 'trusted' | 'green' | 'listed' | 'unlisted' | 'absent'

export interface ZoneResult {
  provider: string
  zone: string
  /** What was looked up: the peer's address or the domain. */
  subject: string
  outcome: ZoneOutcome
  /** The A records answered (the first few). */
  answers: readonly string[]
  /** Why the signal is absent, for the log. */
  error?: string
}

/** The 32 nibbles of an IPv6 address, reversed, dot-separated; null when it is not IPv6. Zone ids (%eth0) are dropped. */
export function nibbles(address: string): string | null {
  const text = address.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '')
  if (!ipaddr.IPv6.isValid(text)) return null
  const hex = ipaddr.IPv6.parse(text)
    .toByteArray()
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
  return hex.split('').reverse().join('.')
}

/** The name to look up for a subject in a zone; null when the subject cannot be looked up there. */
export function zoneName(z: Pick<ZoneConfig, 'zone' | 'kind'>, subject: string): string | null {
  if (z.kind === 'ip') {
    const n = nibbles(subject)
    return n && `${n}.${z.zone}`
  }
  const d = subject.toLowerCase().replace(/\.$/, '')
  // A DNS name has at most 253 octets: a domain too long for this zone is not looked up.
  return /^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/.test(d) && d.length + z.zone.length + 1 <= 253 ? `${d}.${z.zone}` : null
}

/**
 * Answer patterns as the shipped ini writes them: comma-separated, each four octets, an
 * octet a number, a range a-b, or *. A string explains what is wrong.
 */
export function parsePatterns(text: string): AnswerPattern[] | string {
  const out: AnswerPattern[] = []
  for (const item of text.split(/[\s,]+/).filter(Boolean)) {
    const octets = item.split('.')
    if (octets.length !== 4) return `"${printable(item, 40)}" is not four octets (e.g. 127.0.*.1-2)`
    const ranges: OctetRange[] = []
    for (const o of octets) {
      const m = /^(?:(\*)|(\d{1,3})(?:-(\d{1,3}))?)$/.exec(o)
      const low = m?.[1] ? 0 : Number(m?.[2])
      const high = m?.[1] ? 255 : m?.[3] !== undefined ? Number(m[3]) : low
      if (!m || low > 255 || high > 255 || low > high) return `"${printable(item, 40)}": octet "${printable(o, 10)}" is not a number, a range a-b or * within 0-255`
      ranges.push([low, high])
    }
    out.push(ranges as unknown as AnswerPattern)
  }
  return out
}

function matches(patterns: readonly AnswerPattern[], answer: string): boolean {
  const octets = answer.split('.').map(Number)
  if (octets.length !== 4) return false
  return patterns.some((p) => p.every(([low, high], i) => octets[i] >= low && octets[i] <= high))
}

/**
 * The verdict a zone's answers map to: an error answer anywhere makes the signal absent
 * (the provider refused to say); otherwise the strongest mapped answer wins.
 */
export function mapAnswers(z: Pick<ZoneConfig, 'trusted' | 'green' | 'error'>, answers: readonly string[]): ZoneOutcome {
  if (answers.some((a) => matches(z.error, a))) return 'absent'
  if (answers.some((a) => matches(z.trusted, a))) return 'trusted'
  if (answers.some((a) => matches(z.green, a))) return 'green'
  return 'listed'
}

/** A lookup's answer as the zone's result. */
export function fromLookup(z: ZoneConfig, subject: string, found: Lookup<string>): ZoneResult {
  const base = { provider: z.name, zone: z.zone, subject }
  if ('error' in found) return { ...base, outcome: 'absent', answers: [], error: found.error }
  if ('none' in found) return { ...base, outcome: 'unlisted', answers: [] }
  const answers = found.ok.slice(0, 4)
  const outcome = mapAnswers(z, found.ok)
  return outcome === 'absent' ? { ...base, outcome, answers, error: `error answer ${answers.join(',')}` } : { ...base, outcome, answers }
}

/** One zone's lookup, bounded by its timeout (the query itself may run on, its answer cached). */
export async function queryZone(z: ZoneConfig, subject: string, dns: CachingResolver): Promise<ZoneResult> {
  const name = zoneName(z, subject)
  if (!name) return { provider: z.name, zone: z.zone, subject, outcome: 'absent', answers: [], error: 'not a name this zone can look up' }
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Lookup<string>>((resolve) => {
    timer = setTimeout(() => resolve({ error: `no answer within ${z.timeoutMs} ms` }), z.timeoutMs)
  })
  try {
    return fromLookup(z, subject, await Promise.race([dns.a(name), late]))
  } finally {
    clearTimeout(timer)
  }
}

/** The same from the resolver's cache alone; undefined when the answer is not cached. */
export function cachedZone(z: ZoneConfig, subject: string, dns: CachingResolver, until?: { at: number }): ZoneResult | undefined {
  const name = zoneName(z, subject)
  if (!name) return undefined
  const found = dns.cached(name, 'A', until)
  return found && fromLookup(z, subject, found)
}

/** Every zone of the list for one subject, in the configured order. */
export function queryZones(zones: readonly ZoneConfig[], subject: string, dns: CachingResolver): Promise<ZoneResult[]> {
  return Promise.all(zones.map((z) => queryZone(z, subject, dns)))
}

/** A result in a few words: "dnswl list.dnswl.org 127.0.10.3 -> trusted". */
export function zoneText(r: ZoneResult): string {
  const said = r.answers.length ? ` ${r.answers.join(',')}` : ''
  if (r.outcome === 'absent') return `${r.provider} ${r.zone}${said} -> absent (${r.error ?? 'error'})`
  return `${r.provider} ${r.zone}${said} -> ${r.outcome}`
}

/** The strongest verdict among results (trusted before green; the first zone of each): null when none gives one. */
export function bestZone(results: readonly ZoneResult[] | undefined): ZoneResult | null {
  if (!results) return null
  return results.find((r) => r.outcome === 'trusted') ?? results.find((r) => r.outcome === 'green') ?? null
}

/**
 * Zone trouble in the log: the first failure of a zone is logged at once, later ones at most
 * once per interval, with how many there were meanwhile (a provider that refuses every
 * query would otherwise write a line per message).
 */
export class ZoneTroubleLog {
  private readonly last = new Map<string, { at: number; since: number }>()
  constructor(
    private readonly log: (line: string) => void,
    private readonly everyMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  report(r: ZoneResult): void {
    if (r.outcome !== 'absent') return
    const key = `${r.provider} ${r.zone}`
    const seen = this.last.get(key)
    const now = this.now()
    if (seen && now - seen.at < this.everyMs) {
      seen.since++
      return
    }
    const more = seen?.since ? ` (${seen.since} more since the last line)` : ''
    this.last.set(key, { at: now, since: 0 })
    this.log(`provider ${r.provider} (${r.zone}): ${r.error ?? 'no usable answer'} for ${printable(r.subject, 100)}; counted as absent, never as a reason to accept${more}; logged at most once per ${Math.round(this.everyMs / 1000)} s`)
  }
}
