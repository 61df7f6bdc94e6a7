// What the decision code asks of the list store, and what it gets back.

export interface Hit {
  /** The list entry (hash field or set member) that matched. */
  entry: string
  /** The operator's note stored with it (hash value); empty for set members. */
  note: string
}

export interface LookupRequest {
  /** Candidate fields of ip:allow, most specific first. */
  ipCandidates?: readonly string[]
  /** Candidate fields of domain:allow, in priority order. */
  domainCandidates?: string[]
  /** Address books to test: owner = normalised recipient, members = sender forms. */
  books?: Array<{ owner: string; members: string[] }>
  /** Greenlisting: candidate fields of ip:green, host:green, asn:green, domain:green. */
  ipGreenCandidates?: readonly string[]
  hostGreenCandidates?: string[]
  asnGreenCandidates?: string[]
  /** The newest ARC sealer of a message, asked of arc:trusted. */
  arcSealers?: string[]
  domainGreenCandidates?: string[]
  /** Domains whose IPv4 history to read. */
  historyDomains?: string[]
}

export interface History {
  domain: string
  count: number
  /** Unix seconds. */
  first: number
  last: number
}

export interface LookupReply {
  ipAllow?: Hit | null
  domainAllow?: Hit | null
  /** Per requested book: the first member found, or null. */
  books?: Array<string | null>
  /** Absent when ip:allow, asked in the same request, already matched. */
  ipGreen?: Hit | null
  hostGreen?: Hit | null
  asnGreen?: Hit | null
  arcTrusted?: Hit | null
  domainGreen?: Hit | null
  /** Per requested domain; null when there is no (complete) history. */
  history?: Array<History | null>
}

/** One deferred attempt as stored: its fingerprints and its fields (see followup.ts). */
export interface AttemptRecord {
  envelopeHash: string
  midHash: string | null
  /** The attempt's fields, `time` (Unix seconds) among them. */
  fields: Record<string, string>
}

export interface ListStore {
  /** Answers a whole request in one round trip, or rejects with a StoreError. */
  lookup(req: LookupRequest): Promise<LookupReply>
  /**
   * Records a deferred IPv6 attempt off the decision path; never delays or fails the caller.
   * `make` builds the record when it is written; one that throws loses that record only
   * (reported like a failed write).
   */
  recordAttempt(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void
  /** The last-resort SPF record stored for a domain (mx6:spf:guess), or null. */
  spfGuess(domain: string): Promise<string | null>
  /** Adds 1 to each decision counter of today; never delays or fails the caller. */
  count(fields: readonly string[]): void
  close(): Promise<void>
}

/** What the peer list cache holds, answered without a round trip. */
export interface ListCache {
  /** The peer's ip:allow and (with `green`) ip:green answers, by its canonical address; undefined when not held. */
  peer(ipv6: string, green: boolean): LookupReply | undefined
  /** The domain:allow answer cached for exactly these candidates (a hit or null); undefined when not held. */
  domainAllow(candidates: readonly string[]): Hit | null | undefined
}

export interface RedisStoreOptions {
  /** Upper bound for one lookup, in milliseconds. */
  timeoutMs: number
  /** How long per-day counters are kept. */
  statsDays: number
  /** How long counters are summed in memory before they are written. @default 1000 */
  flushMs?: number
  /**
   * Follow-up records are written at most once per this many milliseconds, together in one
   * script call; the first after a quiet spell goes out at the end of its event-loop turn.
   * 0: each turn's records at its end. @default 0
   */
  attemptWriteMs?: number
  /** A write off the decision path failed (dropped, never retried), or a record's builder threw. */
  onWriteError?: (what: 'counters' | 'follow-up record', err: Error) => void
  /**
   * Keep the answers of ip:allow, ip:green and domain:allow in process while Redis reports
   * every change of those hashes (CLIENT TRACKING); a single Redis or Sentinel only.
   * entries=0: no cache.
   */
  peerCache?: { entries: number; maxAgeMs: number; onState?: (on: boolean, why: string) => void }
}

/** One Redis command as batch() sends it. */
export type Command = [string, ...Array<string | number>]

export function isEmptyRequest(req: LookupRequest): boolean {
  return !(req.ipCandidates?.length || req.ipGreenCandidates?.length || req.domainCandidates?.length) && onlyCachedLists(req)
}

/** Whether the request asks nothing but the cached lists, ip:allow / ip:green / domain:allow (or nothing at all). */
export function onlyCachedLists(req: LookupRequest): boolean {
  return !(
    req.books?.length ||
    req.hostGreenCandidates?.length ||
    req.asnGreenCandidates?.length ||
    req.arcSealers?.length ||
    req.domainGreenCandidates?.length ||
    req.historyDomains?.length
  )
}
