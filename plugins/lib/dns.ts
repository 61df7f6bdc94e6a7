// DNS for the suite: SRV, MX, A, AAAA, PTR and TXT with their TTLs, cached for the TTL.
//
// Node's resolver does not report TTLs for SRV, MX, PTR or TXT answers, so
// queries go through dns2's client to the system's name servers (never a
// built-in public resolver).
import { promises, Resolver } from 'node:dns'
import DNS from 'dns2'
import { setBounded } from './memo'

export type RrType = 'SRV' | 'MX' | 'A' | 'AAAA' | 'PTR' | 'TXT'

/** One DNS answer set as the decision code sees it. */
export type Lookup<T> = { ok: T[] } | { none: 'nxdomain' | 'nodata' } | { error: string }

export interface MxRecord {
  priority: number
  exchange: string
}

export interface SrvRecord {
  priority: number
  weight: number
  port: number
  /** Host name without a trailing dot; "" or "." is the "service not available" target. */
  target: string
}

export interface RawAnswer {
  type: number
  ttl: number
  name?: string
  address?: string
  exchange?: string
  priority?: number
  weight?: number
  port?: number
  target?: string
  domain?: string
  data?: string | string[]
  minimum?: number
}

export interface RawReply {
  rcode: number
  answers: RawAnswer[]
  authorities: RawAnswer[]
}

/** What the cache needs from the network: one query, one reply (or a rejection on timeout). */
export interface DnsClient {
  query(name: string, type: RrType): Promise<RawReply>
}

const TYPE: Record<RrType, number> = { A: 1, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33 }
const SOA = 6

export class Dns2Client implements DnsClient {
  private readonly client: DNS
  constructor(servers: string[], timeoutMs: number) {
    if (servers.length === 0) throw new Error('no name servers configured')
    this.client = new DNS({ nameServers: servers, timeout: timeoutMs, retries: 1 })
  }
  async query(name: string, type: RrType): Promise<RawReply> {
    const r = (await this.client.resolve(name, type)) as unknown as { header: { rcode: number }; answers: RawAnswer[]; authorities: RawAnswer[] }
    return { rcode: r.header.rcode, answers: r.answers ?? [], authorities: r.authorities ?? [] }
  }
}

/**
 * Node's own resolver (c-ares): several times faster per query than dns2 here,
 * but it reports TTLs only for A and AAAA; other answers get `fallbackTtl`
 * seconds. mx6-receive uses it for the peer's PTR/AAAA/TXT lookups, where
 * speed matters more than the exact TTL; mx6-send keeps dns2 for SRV/MX TTLs.
 */
export class NodeDnsClient implements DnsClient {
  private readonly resolver: InstanceType<typeof promises.Resolver>
  constructor(
    servers: string[],
    timeoutMs: number,
    private readonly fallbackTtl: number,
  ) {
    if (servers.length === 0) throw new Error('no name servers configured')
    this.resolver = new promises.Resolver({ timeout: timeoutMs, tries: 1 })
    this.resolver.setServers(servers)
  }

  async query(name: string, type: RrType): Promise<RawReply> {
    const t = TYPE[type]
    const reply = (answers: RawAnswer[]): RawReply => ({ rcode: 0, answers, authorities: [] })
    try {
      switch (type) {
        case 'A':
          return reply((await this.resolver.resolve4(name, { ttl: true })).map((r) => ({ type: t, ttl: r.ttl, address: r.address })))
        case 'AAAA':
          return reply((await this.resolver.resolve6(name, { ttl: true })).map((r) => ({ type: t, ttl: r.ttl, address: r.address })))
        case 'PTR':
          return reply((await this.resolver.resolvePtr(name)).map((d) => ({ type: t, ttl: this.fallbackTtl, domain: d })))
        case 'TXT':
          return reply((await this.resolver.resolveTxt(name)).map((d) => ({ type: t, ttl: this.fallbackTtl, data: d })))
        case 'MX':
          return reply((await this.resolver.resolveMx(name)).map((m) => ({ type: t, ttl: this.fallbackTtl, priority: m.priority, exchange: m.exchange })))
        case 'SRV':
          return reply((await this.resolver.resolveSrv(name)).map((r) => ({ type: t, ttl: this.fallbackTtl, priority: r.priority, weight: r.weight, port: r.port, target: r.name })))
      }
    } catch (err) {
      // c-ares codes, mapped to what a DNS reply would have said.
      switch ((err as NodeJS.ErrnoException).code) {
        case 'ENOTFOUND':
          return { rcode: 3, answers: [], authorities: [] }
        case 'ENODATA':
          return { rcode: 0, answers: [], authorities: [] }
        case 'ESERVFAIL':
          return { rcode: 2, answers: [], authorities: [] }
        case 'EREFUSED':
          return { rcode: 5, answers: [], authorities: [] }
        default:
          throw err
      }
    }
  }
}

/** The name servers this host uses (resolv.conf), for Dns2Client. */
export function systemServers(): string[] {
  return new Resolver().getServers()
}

type Parsed = SrvRecord | MxRecord | string

function parse(type: RrType, a: RawAnswer): Parsed | null {
  switch (type) {
    case 'A':
    case 'AAAA':
      return a.address ?? null
    case 'MX':
      return { priority: a.priority ?? 0, exchange: (a.exchange ?? '').replace(/\.$/, '').toLowerCase() }
    case 'SRV':
      return { priority: a.priority ?? 0, weight: a.weight ?? 0, port: a.port ?? 0, target: (a.target ?? '').replace(/\.$/, '').toLowerCase() }
    case 'PTR':
      return a.domain ? a.domain.replace(/\.$/, '').toLowerCase() : null
    case 'TXT':
      // A TXT record is a list of strings; one record's strings are concatenated (RFC 7208 section 3.3).
      return Array.isArray(a.data) ? a.data.join('') : (a.data ?? null)
  }
}

interface Entry {
  value: Lookup<Parsed>
  expires: number
}

export interface CacheOptions {
  /** Seconds NXDOMAIN/NODATA is cached when the reply carries no SOA. */
  negativeTtl: number
  /** Upper bound for any TTL, in seconds. */
  maxTtl: number
  /** At most this many answers are kept (oldest dropped first). @default 10000 */
  maxEntries?: number
  now?: () => number
  /**
   * Told whether the name servers answer: a query without any reply (timeout, no route) is a
   * failure, any reply (NXDOMAIN and SERVFAIL included) that they do. An OutageLog fits.
   */
  health?: { fail(reason: string): void; hit(): void; ok(): void }
}

/**
 * Classifies replies the way a resolver library would (NOERROR with answers,
 * NXDOMAIN, NODATA, anything else temporary) and caches them for their TTL
 * (negative answers for the SOA minimum, RFC 2308). Temporary failures are never cached.
 */
export class CachingResolver {
  private readonly cache = new Map<string, Entry>()
  private readonly now: () => number
  constructor(
    private readonly client: DnsClient,
    private readonly opts: CacheOptions,
  ) {
    this.now = opts.now ?? Date.now
  }

  srv(name: string): Promise<Lookup<SrvRecord>> {
    return this.lookup(name, 'SRV') as Promise<Lookup<SrvRecord>>
  }
  mx(name: string): Promise<Lookup<MxRecord>> {
    return this.lookup(name, 'MX') as Promise<Lookup<MxRecord>>
  }
  a(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'A') as Promise<Lookup<string>>
  }
  aaaa(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'AAAA') as Promise<Lookup<string>>
  }
  ptr(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'PTR') as Promise<Lookup<string>>
  }
  txt(name: string): Promise<Lookup<string>> {
    return this.lookup(name, 'TXT') as Promise<Lookup<string>>
  }

  get size(): number {
    return this.cache.size
  }

  /**
   * The answer the cache holds for this name and type, if any and not expired (no query).
   * `until`, when given, is lowered to the answer's expiry (ms, the cache's clock): what is
   * computed from several answers holds until the first of them expires.
   */
  cached(name: string, type: 'A' | 'AAAA' | 'PTR' | 'TXT', until?: { at: number }): Lookup<string> | undefined {
    const hit = this.cache.get(`${type} ${name.toLowerCase()}`)
    if (!hit || hit.expires <= this.now()) return undefined
    if (until && hit.expires < until.at) until.at = hit.expires
    return hit.value as Lookup<string>
  }

  /** Whether a time from `cached`'s `until` (ms, the cache's clock) is still to come. */
  before(at: number): boolean {
    return this.now() < at
  }

  private async lookup(name: string, type: RrType): Promise<Lookup<Parsed>> {
    const key = `${type} ${name.toLowerCase()}`
    const hit = this.cache.get(key)
    if (hit && hit.expires > this.now()) return hit.value
    this.cache.delete(key)
    let reply: RawReply
    try {
      reply = await this.client.query(name, type)
    } catch (err) {
      const error = `${type} ${name}: ${(err as Error).message || 'no answer'}`
      this.opts.health?.fail(error)
      this.opts.health?.hit()
      return { error }
    }
    this.opts.health?.ok()
    const { value, ttl } = this.classify(type, reply)
    if (!('error' in value) && ttl > 0) {
      // Each new peer brings new names: the cache stays bounded however many there are.
      setBounded(this.cache, key, { value, expires: this.now() + Math.min(ttl, this.opts.maxTtl) * 1000 }, this.opts.maxEntries ?? 10000)
    }
    return value
  }

  private classify(type: RrType, r: RawReply): { value: Lookup<Parsed>; ttl: number } {
    if (r.rcode === 3) return { value: { none: 'nxdomain' }, ttl: this.negativeTtl(r) }
    if (r.rcode !== 0) return { value: { error: `${type} lookup rcode ${r.rcode}${r.rcode === 2 ? ' (SERVFAIL)' : r.rcode === 5 ? ' (REFUSED)' : ''}` }, ttl: 0 }
    const matching = r.answers.filter((a) => a.type === TYPE[type])
    if (matching.length === 0) return { value: { none: 'nodata' }, ttl: this.negativeTtl(r) }
    const values = matching.map((a) => parse(type, a)).filter((v): v is Parsed => v !== null)
    return { value: { ok: values }, ttl: Math.min(...matching.map((a) => a.ttl)) }
  }

  private negativeTtl(r: RawReply): number {
    const soa = r.authorities.find((a) => a.type === SOA)
    return soa ? Math.min(soa.ttl, soa.minimum ?? soa.ttl) : this.opts.negativeTtl
  }
}
