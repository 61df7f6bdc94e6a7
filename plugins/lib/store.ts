// The list store: what the decision core needs from Redis, behind a narrow interface.
import { ReplyError } from 'ioredis'
import { batch, isCluster, type RedisClient } from './redis'
import { joinedPrefixes } from './ip'
import { memo } from './memo'
import { Keys } from './keys'
import { TrackedCache } from './tracking'

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
  domainGreen?: Hit | null
  /** Per requested domain; null when there is no (complete) history. */
  history?: Array<History | null>
}

export interface ListStore {
  /** Answers a whole request in one round trip, or rejects with a StoreError. */
  lookup(req: LookupRequest): Promise<LookupReply>
  /**
   * The answer to a request for ip:allow / ip:green / domain:allow alone, when the
   * list cache holds all of it (no round trip); undefined otherwise.
   */
  cached?(req: LookupRequest): LookupReply | undefined
  /**
   * What the peer list cache holds for a peer's ip:allow and, with `green`, ip:green (the
   * answers a lookup of its candidate prefixes in those lists gave), found by its canonical
   * address without building the candidates; undefined when the cache does not hold them.
   */
  cachedPeer?(ipv6: string, green: boolean): LookupReply | undefined
  /**
   * Records a deferred IPv6 attempt (fingerprints with a TTL, in bounded indexes whose
   * trimmed entries are deleted with their keys), off the decision path; never delays or
   * fails the caller. `make` builds the record (hashing, field texts) when it is written:
   * with a single Redis, together with the others of its batch after the hook has
   * answered; on a Cluster, at once. A `make` that throws loses that record only
   * (reported like a failed write).
   */
  recordAttempt(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void
  /** The last-resort SPF record stored for a domain (mx6:spf:guess), or null. */
  spfGuess(domain: string): Promise<string | null>
  /** Adds 1 to each decision counter of today; never delays or fails the caller. */
  count(fields: readonly string[]): void
  close(): Promise<void>
}

/** One deferred attempt as stored: its fingerprints and its fields (see followup.ts). */
export interface AttemptRecord {
  envelopeHash: string
  midHash: string | null
  /** The attempt's fields, `time` (Unix seconds) among them. */
  fields: Record<string, string>
}

export function isEmptyRequest(req: LookupRequest): boolean {
  return !(req.ipCandidates?.length || req.ipGreenCandidates?.length || req.domainCandidates?.length) && onlyCachedLists(req)
}

/** Whether the request asks nothing but the cached lists, ip:allow / ip:green / domain:allow (or nothing at all). */
export function onlyCachedLists(req: LookupRequest): boolean {
  return !(
    req.books?.length ||
    req.hostGreenCandidates?.length ||
    req.asnGreenCandidates?.length ||
    req.domainGreenCandidates?.length ||
    req.historyDomains?.length
  )
}

function toHistory(domain: string, values: unknown): History | null {
  if (!Array.isArray(values)) throw new StoreReplyError('unexpected HMGET reply')
  const [count, first, last] = values.map((v) => (v === null || v === undefined ? NaN : Number(v)))
  if (![count, first, last].every(Number.isFinite)) return null
  return { domain, count, first, last }
}

/** Base of every store failure; the glue answers each with a 4xx for IPv6 peers. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}
/** Redis is not connected (down, restarting, wrong address). */
export class StoreUnavailableError extends StoreError {}
/** Redis did not answer within the configured bound. */
export class StoreTimeoutError extends StoreError {}
/** Redis answered with an error, e.g. WRONGTYPE for a key of the wrong type. */
export class StoreReplyError extends StoreError {}

/**
 * A client's failure as a StoreError: ioredis reports its commandTimeout as "Command timed
 * out"; Redis's own errors are ReplyErrors; anything else (the connection closed under the
 * command) means Redis is away.
 */
function toStoreError(err: Error): StoreError {
  if (err instanceof StoreError) return err
  return /timed out/i.test(err.message) ? new StoreTimeoutError(err.message) : err instanceof ReplyError ? new StoreReplyError(err.message) : new StoreUnavailableError(err.message)
}

function firstHit(fields: string[], values: unknown): Hit | null {
  if (!Array.isArray(values)) throw new StoreReplyError('unexpected HMGET reply')
  for (let i = 0; i < fields.length; i++) {
    const v = values[i]
    if (v !== null && v !== undefined) return { entry: fields[i], note: String(v) }
  }
  return null
}

function firstMember(members: string[], flags: unknown): string | null {
  if (!Array.isArray(flags)) throw new StoreReplyError('unexpected SMISMEMBER reply')
  const i = flags.findIndex((f) => Number(f) === 1)
  return i >= 0 ? members[i] : null
}

/**
 * The CIDR lists' lookup, run inside Redis: KEYS are hashes in priority order
 * (ip:allow, then ip:green), ARGV[1] the candidate fields, most specific first,
 * joined by newlines (see joinedPrefixes). Returns [key index, field, value]
 * for the first hash that holds one of them and stops there: a peer found in
 * ip:allow needs no ip:green answer. One argument out and only the hit back
 * costs the client a fraction of what 129 arguments and 129-field HMGET
 * replies do; the script reads nothing but the hashes in KEYS.
 */
export const FIRST_FIELD_LUA = `local c = {}
for f in string.gmatch(ARGV[1], '[^\\n]+') do c[#c + 1] = f end
for k = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[k], unpack(c))
  for i = 1, #c do
    if v[i] then return {k, c[i], v[i]} end
  end
end
return {}`
const FIRST_FIELD = 'mx6FirstField'

/**
 * At most this many entries leave each follow-up index per write (with their keys), too
 * old or too many: a lowered max_entries is reached over the next writes, without one
 * long script.
 */
export const MAX_TRIMMED_PER_WRITE = 1000

/**
 * The follow-up records of deferred attempts in one call (a single Redis; a Cluster
 * gets the same commands one by one, the keys live in different slots). KEYS[1] is
 * the attempts index, KEYS[2] the Message-ID index, then each record's attempt hash
 * and, if it has one, its Message-ID key. ARGV: TTL, most entries, the records as one
 * JSON array of {t: time, e: envelope hash, a: index in KEYS of its attempt hash, m: of
 * its Message-ID key or 0, h: the Message-ID hash, f: its other fields} (one argument
 * per batch costs the client a fraction of twenty per record), and the key prefixes of
 * attempt hashes and Message-ID keys. Records are applied in order; a retry of the same
 * envelope keeps the time of the first deferral. Then both indexes are trimmed (older
 * than the TTL, then the oldest past the most entries, at most MAX_TRIMMED_PER_WRITE
 * each), and what leaves an index is deleted with it: Redis holds at most that many
 * attempt hashes and Message-ID keys, not every deferral of the TTL. (Those keys are
 * named from the prefixes, not passed in KEYS: this script runs on a single Redis only.)
 */
export const RECORD_ATTEMPT_LUA = `local ttl = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local latest = 0
for _, r in ipairs(cjson.decode(ARGV[3])) do
  local key = KEYS[r.a]
  redis.call('HSETNX', key, 'time', r.t)
  local f = {}
  for k, v in pairs(r.f) do f[#f + 1] = k; f[#f + 1] = v end
  if #f > 0 then redis.call('HSET', key, unpack(f)) end
  redis.call('EXPIRE', key, ttl)
  redis.call('ZADD', KEYS[1], 'NX', r.t, r.e)
  if r.m > 0 then
    redis.call('SET', KEYS[r.m], r.e, 'EX', ttl)
    redis.call('ZADD', KEYS[2], r.t, r.h)
  end
  if tonumber(r.t) > latest then latest = tonumber(r.t) end
end
local function trim(index, prefix)
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', latest - ttl, 'LIMIT', 0, ${MAX_TRIMMED_PER_WRITE})
  local over = math.min(${MAX_TRIMMED_PER_WRITE} - #gone, redis.call('ZCARD', index) - #gone - max)
  if over > 0 then
    for _, v in ipairs(redis.call('ZRANGE', index, #gone, #gone + over - 1)) do gone[#gone + 1] = v end
  end
  for _, v in ipairs(gone) do
    redis.call('DEL', prefix .. v)
    redis.call('ZREM', index, v)
  end
end
trim(KEYS[1], ARGV[4])
trim(KEYS[2], ARGV[5])
return 1`
const RECORD_ATTEMPT = 'mx6RecordAttempt'

/**
 * Marks a deferred attempt as come back over IPv4, if it is still there: an attempt hash
 * that expired or was trimmed (see RECORD_ATTEMPT_LUA) since it was read is not made
 * again, without a TTL. One key: the same on a single Redis and a Cluster.
 */
const MARK_RETURNED_LUA = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'returned', ARGV[1], 'returned_from', ARGV[2])
return 1`

/** Whether the attempt hash `key` was there and is now marked as returned at `now` from `from`. */
export async function markReturned(client: RedisClient, key: string, now: number, from: string): Promise<boolean> {
  return Number(await client.eval(MARK_RETURNED_LUA, 1, key, String(now), from)) === 1
}

/** Follow-up records of one event-loop turn or write window, not built yet (see recordAttempt). */
interface AttemptBatch {
  ttlSec: number
  maxEntries: number
  makes: Array<() => AttemptRecord>
  /** The write window's timer, when the batch waits for it. */
  timer: NodeJS.Timeout | null
}

/** At most this many follow-up records per script call (a longer batch is sent at once). */
export const MAX_ATTEMPTS_PER_CALL = 200

/** Per key of the script call: its hit, null (looked, no hit) or undefined (not looked at: an earlier key hit). */
type ScriptHits = Array<Hit | null | undefined>
/** One script call: which reply field each of its hashes answers, the hash, the candidates. */
type PeerCall = Array<['ipAllow' | 'ipGreen', string, readonly string[]]>

function takeHits(reply: LookupReply, call: PeerCall, hits: ScriptHits): void {
  for (let j = 0; j < call.length; j++) if (hits[j] !== undefined) reply[call[j][0]] = hits[j]
}

function scriptHits(value: unknown, keys: number): ScriptHits {
  if (!Array.isArray(value) || (value.length !== 0 && value.length !== 3)) throw new StoreReplyError('unexpected script reply')
  if (value.length === 0) return new Array<null>(keys).fill(null)
  const at = Number(value[0]) - 1
  return Array.from({ length: keys }, (_, i) => (i < at ? null : i === at ? { entry: String(value[1]), note: String(value[2]) } : undefined))
}

/** The list cache's key for a domain:allow lookup of these candidates (its value: [hit or null]). */
function domainCacheKey(candidates: readonly string[]): string {
  return `domain|${candidates.join(' ')}`
}

/**
 * The peer list cache's keys for a peer's script calls, by which hashes a call asks (0:
 * ip:allow and ip:green, 1: ip:allow, 2: ip:green). Keyed by the peer's canonical address
 * (its /128, the first candidate), so that a repeat peer's answers are found without its
 * candidates; made once per recent address rather than per lookup.
 */
const peerCacheKeys = memo(4096, (ipv6: string): readonly string[] => [`allow+green|${ipv6}`, `allow|${ipv6}`, `green|${ipv6}`])

function peerCacheKey(shape: 0 | 1 | 2, ipv6: string): string {
  return peerCacheKeys(ipv6)[shape]
}

export interface RedisStoreOptions {
  /** Upper bound for one lookup, in milliseconds. */
  timeoutMs: number
  /** How long per-day counters are kept. */
  statsDays: number
  /** How long counters are summed in memory before they are written. @default 1000 */
  flushMs?: number
  /**
   * Follow-up records are written at most once per this many milliseconds: those recorded
   * meanwhile go out together, in one script call. The first record after a quiet spell
   * goes out at the end of its event-loop turn. 0: each turn's records at its end. @default 0
   */
  attemptWriteMs?: number
  /**
   * A write off the decision path failed (it is dropped, never retried): the day's
   * counters, or a follow-up record (not written, or its builder threw).
   */
  onWriteError?: (what: 'counters' | 'follow-up record', err: Error) => void
  /**
   * Keep the answers of the peer's CIDR lookups (ip:allow, ip:green) in process
   * while Redis reports every change of those hashes (CLIENT TRACKING); a single
   * Redis or Sentinel only. entries=0: no cache.
   */
  peerCache?: { entries: number; maxAgeMs: number; onState?: (on: boolean, why: string) => void }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]))
}

export function today(now = new Date()): string {
  return now.toISOString().slice(0, 10).replace(/-/g, '')
}

export class RedisListStore implements ListStore {
  private pending = new Map<string, number>()
  /** Follow-up records waiting for the end of this event-loop turn, or of the write window (see recordAttempt). */
  private attempts: AttemptBatch | null = null
  /** When the last follow-up script call was sent (performance.now()), for attemptWriteMs. */
  private attemptsSent = -Infinity
  private flushTimer: NodeJS.Timeout | null = null
  private readonly cache: TrackedCache<ScriptHits> | null = null
  /**
   * Whether the client bounds every command itself within timeoutMs (a single Redis or
   * Sentinel client whose commandTimeout is at most that, as createRedis sets it): a
   * Redis call then needs no timer of ours (see bounded()), which costs a busy server
   * measurable CPU. A Cluster client is always bounded here (redirections and retries
   * may take longer than one command's timeout).
   */
  private readonly clientBounds: boolean
  /** The client is a Cluster's (asked once: an instanceof per decision costs a busy server measurable CPU). */
  private readonly cluster: boolean

  constructor(
    private readonly client: RedisClient,
    readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
  ) {
    this.cluster = isCluster(client)
    const own = isCluster(client) ? undefined : client.options.commandTimeout
    this.clientBounds = typeof own === 'number' && own > 0 && own <= opts.timeoutMs
    if (!(FIRST_FIELD in client.scriptsSet)) client.defineCommand(FIRST_FIELD, { lua: FIRST_FIELD_LUA })
    if (!(RECORD_ATTEMPT in client.scriptsSet)) client.defineCommand(RECORD_ATTEMPT, { lua: RECORD_ATTEMPT_LUA })
    const pc = opts.peerCache
    if (pc && pc.entries > 0) {
      // Tracking is per node, and the two hashes live on different nodes of a Cluster.
      if (isCluster(client)) pc.onState?.(false, 'not used on a Redis Cluster')
      else this.cache = new TrackedCache<ScriptHits>(client, [keys.ipAllow, keys.ipGreen, keys.domainAllow], { maxEntries: pc.entries, maxAgeMs: pc.maxAgeMs, onState: pc.onState }).start()
    }
  }

  /** Whether the peer list cache is in use now (see RedisStoreOptions.peerCache). */
  get peerCacheOn(): boolean {
    return this.cache?.enabled ?? false
  }

  cached(req: LookupRequest): LookupReply | undefined {
    if (!this.cache?.enabled || !onlyCachedLists(req)) return undefined
    const domain = this.cachedDomain(req)
    if (domain.key && !domain.hits) return undefined
    const reply: LookupReply = {}
    // The peer's lists, when asked (the plugin asks them by address: cachedPeer).
    if (req.ipCandidates?.length || req.ipGreenCandidates?.length) {
      const { ipCalls, cached } = this.cachedParts(req)
      if (!cached.every((c) => c !== undefined)) return undefined
      ipCalls.forEach((call, j) => takeHits(reply, call, cached[j]!))
    }
    if (domain.hits) reply.domainAllow = domain.hits[0] ?? null
    return reply
  }

  cachedPeer(ipv6: string, green: boolean): LookupReply | undefined {
    if (!this.cache?.enabled) return undefined
    // The call lookup() makes for the peer's lists on a single Redis (the cache is off on a Cluster).
    const hits = this.cache.get(peerCacheKey(green ? 0 : 1, ipv6))
    if (hits === undefined) return undefined
    const reply: LookupReply = {}
    if (hits[0] !== undefined) reply.ipAllow = hits[0]
    if (green && hits[1] !== undefined) reply.ipGreen = hits[1]
    return reply
  }

  /**
   * The script calls for the peer's CIDR lists, with their list cache keys and the answers
   * the cache holds. ip:allow and ip:green share the peer's candidates: one call for both
   * on a single Redis (ip:green is skipped when ip:allow hits); one per hash on a Cluster
   * (the two keys live in different slots).
   */
  private cachedParts(req: LookupRequest): { ipCalls: PeerCall[]; cacheKeys: string[]; cached: Array<ScriptHits | undefined> } {
    const k = this.keys
    const ipKeys: PeerCall = []
    if (req.ipCandidates?.length) ipKeys.push(['ipAllow', k.ipAllow, req.ipCandidates])
    if (req.ipGreenCandidates?.length) ipKeys.push(['ipGreen', k.ipGreen, req.ipGreenCandidates])
    const together = ipKeys.length === 2 && !this.cluster && sameList(ipKeys[0][2], ipKeys[1][2])
    const ipCalls = together ? [ipKeys] : ipKeys.map((x) => [x])
    // Answers of earlier script calls for the same peer, while Redis vouches that the hashes did not change.
    const cache = this.cache
    const cacheKeys = cache ? ipCalls.map((call) => peerCacheKey(call.length === 2 ? 0 : call[0][0] === 'ipAllow' ? 1 : 2, call[0][2][0])) : []
    return { ipCalls, cacheKeys, cached: ipCalls.map((_, j) => (cache ? cache.get(cacheKeys[j]) : undefined)) }
  }

  /** The domain:allow lookup's list cache key ('' when none) and the answer the cache holds. */
  private cachedDomain(req: LookupRequest): { key: string; hits: ScriptHits | undefined } {
    // domain:allow changes as seldom as the peer lists: cached the same way.
    const key = this.cache && req.domainCandidates?.length ? domainCacheKey(req.domainCandidates) : ''
    return { key, hits: key ? this.cache?.get(key) : undefined }
  }

  async lookup(req: LookupRequest): Promise<LookupReply> {
    if (this.client.status !== 'ready') throw new StoreUnavailableError(`redis not connected (${this.client.status})`)
    // One pipeline = one round trip, however many entries the lists hold.
    const cmds: Array<[string, ...Array<string | number>]> = []
    const k = this.keys
    const cache = this.cache
    // Script calls the cache answers are not sent: a repeat peer with nothing else to ask costs no round trip.
    const { ipCalls, cacheKeys, cached } = this.cachedParts(req)
    const domain = this.cachedDomain(req)
    const reply: LookupReply = {}
    const token = cache?.token() ?? null
    ipCalls.forEach((call, j) => {
      if (cached[j] === undefined) cmds.push([FIRST_FIELD, call.length, ...call.map((x) => x[1]), joinedPrefixes(call[0][2])])
    })
    if (req.domainCandidates?.length && !domain.hits) cmds.push(['hmget', k.domainAllow, ...req.domainCandidates])
    for (const b of req.books ?? []) cmds.push(['smismember', k.book(b.owner), ...b.members])
    const greens: Array<[keyof LookupReply, string, string[] | undefined]> = [
      ['hostGreen', k.hostGreen, req.hostGreenCandidates],
      ['asnGreen', k.asnGreen, req.asnGreenCandidates],
      ['domainGreen', k.domainGreen, req.domainGreenCandidates],
    ]
    for (const [, key, fields] of greens) if (fields?.length) cmds.push(['hmget', key, ...fields])
    for (const d of req.historyDomains ?? []) cmds.push(['hmget', k.history(d), 'count', 'first', 'last'])
    const results = cmds.length ? await this.bounded(batch(this.client, cmds)) : []
    if (!results) throw new StoreUnavailableError('pipeline discarded')
    let i = 0
    const next = (): unknown => {
      const [err, value] = results[i++]
      if (err) throw toStoreError(err)
      return value
    }
    for (const [n, call] of ipCalls.entries()) {
      let hits = cached[n]
      if (hits === undefined) {
        hits = scriptHits(next(), call.length)
        cache?.set(token, cacheKeys[n], hits)
      }
      takeHits(reply, call, hits)
    }
    if (domain.hits) reply.domainAllow = domain.hits[0] ?? null
    else if (req.domainCandidates?.length) {
      reply.domainAllow = firstHit(req.domainCandidates, next())
      if (domain.key) cache?.set(token, domain.key, [reply.domainAllow])
    }
    if (req.books?.length) reply.books = req.books.map((b) => firstMember(b.members, next()))
    for (const [name, , fields] of greens) if (fields?.length) (reply as Record<string, unknown>)[name] = firstHit(fields, next())
    if (req.historyDomains?.length) reply.history = req.historyDomains.map((d) => toHistory(d, next()))
    return reply
  }

  recordAttempt(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void {
    if (this.client.status !== 'ready') return
    if (!this.cluster) {
      // Attempts go out together, in order, in one script call, off the decision path: at
      // the end of the event-loop turn, or under load when the write window (attemptWriteMs)
      // since the last call ends, so that many share one call (each client call costs Haraka
      // far more CPU than a record in it). Each record is built then, with the others of its
      // batch, not in the hook that deferred it.
      let b = this.attempts
      if (b && (b.ttlSec !== ttlSec || b.maxEntries !== maxEntries)) {
        void this.writeAttempts()
        b = null
      }
      if (!b) {
        b = { ttlSec, maxEntries, makes: [], timer: null }
        this.attempts = b
        const wait = this.attemptsSent + (this.opts.attemptWriteMs ?? 0) - performance.now()
        const mine = b
        // Only this batch, if it has not been sent already (full, or a config change).
        const send = (): void => void (this.attempts === mine && this.writeAttempts())
        if (wait > 0) {
          b.timer = setTimeout(send, wait)
          b.timer.unref()
        } else setImmediate(send)
      }
      b.makes.push(make)
      // A bounded script argument, however long the window and heavy the load.
      if (b.makes.length >= MAX_ATTEMPTS_PER_CALL) void this.writeAttempts()
      return
    }
    const built = this.build(make)
    if (!built) return
    const { envelopeHash, midHash, fields } = built
    const k = this.keys
    const now = Number(fields.time)
    // A retry of the same deferred envelope keeps the time of the first deferral.
    const { time: _first, ...rest } = fields
    const cmds: Array<[string, ...Array<string | number>]> = [
      ['hsetnx', k.attempt(envelopeHash), 'time', fields.time],
      ['hset', k.attempt(envelopeHash), ...Object.entries(rest).flat()],
      ['expire', k.attempt(envelopeHash), ttlSec],
      ['zadd', k.attempts, 'NX', now, envelopeHash],
    ]
    if (midHash) cmds.push(['set', k.attemptByMessageId(midHash), envelopeHash, 'EX', ttlSec], ['zadd', k.attemptMessageIds, now, midHash])
    batch(this.client, cmds)
      .then((results) => {
        const err = results.find(([e]) => e)?.[0]
        if (err) throw err
        return this.trimAttempts(now - ttlSec, maxEntries)
      })
      .catch((err: Error) => this.opts.onWriteError?.('follow-up record', err))
  }

  /** A Cluster's trim of the follow-up indexes is under way (see trimAttempts). */
  private trimming = false
  /** The latest trim asked for and not started yet: run by the one under way when it ends. */
  private trimNext: { cutoff: number; maxEntries: number } | null = null

  /**
   * On a Cluster, what RECORD_ATTEMPT_LUA does after its records, one command at a time
   * (the keys live in different slots): each index loses its entries older than `cutoff`,
   * then its oldest past `maxEntries` (at most MAX_TRIMMED_PER_WRITE in all), and each
   * entry's key goes with it. One trim at a time per store: one asked for meanwhile runs
   * when it ends (after a failure, the next write's trim catches up). A record another
   * node writes for an entry being trimmed may go with it, and one trimmed while its own
   * commands are still on their way to other nodes (only with a bound smaller than the
   * records in flight) may leave its key until its TTL: evidence, not mail.
   */
  private async trimAttempts(cutoff: number, maxEntries: number): Promise<void> {
    this.trimNext = { cutoff, maxEntries }
    if (this.trimming) return
    this.trimming = true
    try {
      for (let t = this.takeTrim(); t; t = this.takeTrim()) {
        await this.trimIndex(this.keys.attempts, (h) => this.keys.attempt(h), t.cutoff, t.maxEntries)
        await this.trimIndex(this.keys.attemptMessageIds, (h) => this.keys.attemptByMessageId(h), t.cutoff, t.maxEntries)
      }
    } finally {
      this.trimming = false
      this.trimNext = null
    }
  }

  /** The trim asked for and not started yet, no longer waiting (null when none). */
  private takeTrim(): { cutoff: number; maxEntries: number } | null {
    const t = this.trimNext
    this.trimNext = null
    return t
  }

  /** One index's part of trimAttempts. */
  private async trimIndex(index: string, keyOf: (member: string) => string, cutoff: number, maxEntries: number): Promise<void> {
    const c = this.client
    const gone = await c.zrangebyscore(index, '-inf', cutoff, 'LIMIT', 0, MAX_TRIMMED_PER_WRITE)
    const over = Math.min(MAX_TRIMMED_PER_WRITE - gone.length, (await c.zcard(index)) - gone.length - maxEntries)
    if (over > 0) gone.push(...(await c.zrange(index, String(gone.length), String(gone.length + over - 1))))
    if (gone.length === 0) return
    await Promise.all(gone.map((h) => c.del(keyOf(h))))
    await c.zrem(index, ...gone)
  }

  /** The record `make` builds; null (reported like a failed write) when it throws. */
  private build(make: () => AttemptRecord): AttemptRecord | null {
    try {
      return make()
    } catch (err) {
      this.opts.onWriteError?.('follow-up record', err as Error)
      return null
    }
  }

  /** Builds the attempts recorded since the last call and sends them in one script call. */
  private async writeAttempts(): Promise<void> {
    const b = this.attempts
    this.attempts = null
    if (!b) return
    if (b.timer) clearTimeout(b.timer)
    this.attemptsSent = performance.now()
    const k = this.keys
    const keys = [k.attempts, k.attemptMessageIds]
    const records: Array<{ t: string; e: string; a: number; m: number; h?: string; f: Record<string, string> }> = []
    for (const make of b.makes) {
      const r = this.build(make)
      if (!r) continue
      // A retry of the same deferred envelope keeps the time of the first deferral (HSETNX in the script).
      const { time, ...rest } = r.fields
      const a = keys.push(k.attempt(r.envelopeHash))
      if (r.midHash) records.push({ t: time, e: r.envelopeHash, a, m: keys.push(k.attemptByMessageId(r.midHash)), h: r.midHash, f: rest })
      else records.push({ t: time, e: r.envelopeHash, a, m: 0, f: rest })
    }
    if (records.length === 0) return
    await batch(this.client, [[RECORD_ATTEMPT, keys.length, ...keys, b.ttlSec, b.maxEntries, JSON.stringify(records), k.attempt(''), k.attemptByMessageId('')]])
      .then((results) => {
        if (results[0]?.[0]) throw results[0][0]
      })
      .catch((err: Error) => this.opts.onWriteError?.('follow-up record', err))
  }

  async spfGuess(domain: string): Promise<string | null> {
    if (this.client.status !== 'ready') throw new StoreUnavailableError(`redis not connected (${this.client.status})`)
    return this.bounded(this.client.hget(this.keys.spfGuess, domain))
  }

  /**
   * Counters are summed in memory and written once per flush interval, off the
   * decision path: a decision phase stays one Redis round trip.
   */
  count(fields: readonly string[]): void {
    for (const f of fields) this.pending.set(f, (this.pending.get(f) ?? 0) + 1)
    if (this.pending.size > 0 && !this.flushTimer) {
      this.flushTimer = setTimeout(() => void this.flush(), this.opts.flushMs ?? 1000)
      this.flushTimer.unref()
    }
  }

  /** Writes the summed counters (also called on close). Failures are reported, the counts dropped. */
  async flush(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = null
    if (this.pending.size === 0) return
    const counts = this.pending
    this.pending = new Map()
    if (this.client.status !== 'ready') {
      this.opts.onWriteError?.('counters', new StoreUnavailableError(`redis not connected; ${counts.size} counters dropped`))
      return
    }
    const key = this.keys.stats(today())
    const cmds: Array<[string, ...Array<string | number>]> = [...counts].map(([f, n]): [string, ...Array<string | number>] => ['hincrby', key, f, n])
    cmds.push(['expire', key, this.opts.statsDays * 86400])
    await batch(this.client, cmds).catch((err: Error) => this.opts.onWriteError?.('counters', err))
  }

  async close(): Promise<void> {
    await this.writeAttempts()
    await this.flush()
    this.cache?.close()
    this.client.disconnect()
  }

  /**
   * The work within timeoutMs (else a StoreTimeoutError), its failures as StoreErrors. A
   * client that bounds every command itself (clientBounds) needs no timer of ours.
   */
  private bounded<T>(work: Promise<T>): Promise<T> {
    if (this.clientBounds) return work.catch((err: Error) => Promise.reject(toStoreError(err)))
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreTimeoutError(`no answer from redis within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs)
      work.then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (err: Error) => {
          clearTimeout(timer)
          reject(toStoreError(err))
        },
      )
    })
  }
}
