// A table-driven ListStore for unit tests of the plugin glue.
import { StoreReplyError, type AttemptRecord, type Hit, type History, type ListCache, type ListStore, type LookupReply, type LookupRequest } from '../../plugins/lib/store'

export class FakeStore implements ListStore {
  ipAllow = new Map<string, string>()
  domainAllow = new Map<string, string>()
  books = new Map<string, Set<string>>()
  ipGreen = new Map<string, string>()
  hostGreen = new Map<string, string>()
  asnGreen = new Map<string, string>()
  arcTrusted = new Map<string, string>()
  domainGreen = new Map<string, string>()
  history = new Map<string, History>()
  requests: LookupRequest[] = []
  counted: string[] = []
  failWith: Error | null = null
  /** What the peer list cache holds for the peer (its ip:allow and ip:green answers). */
  peerCache: LookupReply | null = null
  /** What the list cache holds for domain:allow lookups, by their candidates joined with spaces. */
  domainCache = new Map<string, Hit | null>()
  /** How often the cache was asked. */
  cacheAsked = 0

  readonly cache: ListCache = {
    peer: (_ipv6, green) => {
      this.cacheAsked++
      if (!this.peerCache) return undefined
      const { ipAllow, ipGreen } = this.peerCache
      return { ...(ipAllow !== undefined ? { ipAllow } : {}), ...(green && ipGreen !== undefined ? { ipGreen } : {}) }
    },
    domainAllow: (candidates) => {
      this.cacheAsked++
      return this.domainCache.get(candidates.join(' '))
    },
  }

  async lookup(req: LookupRequest): Promise<LookupReply> {
    this.requests.push(req)
    if (this.failWith) throw this.failWith
    const first = (fields: readonly string[] | undefined, m: Map<string, string>) => {
      if (!fields) return undefined
      const f = fields.find((x) => m.has(x))
      return f === undefined ? null : { entry: f, note: m.get(f) ?? '' }
    }
    const reply: LookupReply = {}
    if (req.ipCandidates?.length) reply.ipAllow = first(req.ipCandidates, this.ipAllow)
    if (req.domainCandidates?.length) reply.domainAllow = first(req.domainCandidates, this.domainAllow)
    if (req.ipGreenCandidates?.length) reply.ipGreen = first(req.ipGreenCandidates, this.ipGreen)
    if (req.hostGreenCandidates?.length) reply.hostGreen = first(req.hostGreenCandidates, this.hostGreen)
    if (req.asnGreenCandidates?.length) reply.asnGreen = first(req.asnGreenCandidates, this.asnGreen)
    if (req.domainGreenCandidates?.length) reply.domainGreen = first(req.domainGreenCandidates, this.domainGreen)
    if (req.arcSealers?.length) reply.arcTrusted = first(req.arcSealers, this.arcTrusted)
    if (req.historyDomains?.length) reply.history = req.historyDomains.map((d) => this.history.get(d) ?? null)
    if (req.books?.length) reply.books = req.books.map((b) => b.members.find((m) => this.books.get(b.owner)?.has(m)) ?? null)
    return reply
  }

  attempts: Array<{ envelopeHash: string; midHash: string | null; fields: Record<string, string> }> = []
  /** Builds the record at once (the real store builds it when it writes its batch). */
  recordAttempt(make: () => AttemptRecord): void {
    this.attempts.push(make())
  }

  spfGuesses = new Map<string, string>()
  async spfGuess(domain: string): Promise<string | null> {
    if (this.failWith) throw this.failWith
    return this.spfGuesses.get(domain) ?? null
  }

  count(fields: readonly string[]): void {
    this.counted.push(...fields)
  }

  async close(): Promise<void> {}

  static wrongType(): StoreReplyError {
    return new StoreReplyError('WRONGTYPE Operation against a key holding the wrong kind of value')
  }
}
