// Follow-up records of deferred IPv6 attempts (see ../followup.ts), written off the decision
// path: fingerprints with a TTL, in bounded indexes whose trimmed entries go with their keys.
import type { Cluster, Redis } from 'ioredis'
import type { Keys } from '../keys'
import { batch, type RedisClient } from '../redis'
import type { AttemptRecord, Command, RedisStoreOptions } from './types'

/** At most this many entries leave each index per write: a lowered max_entries is reached over several writes, not in one long script. */
export const MAX_TRIMMED_PER_WRITE = 1000

/** At most this many records per script call (a longer batch is sent at once): a bounded script argument. */
export const MAX_ATTEMPTS_PER_CALL = 200

/**
 * A batch of records in one call, on a single Redis. KEYS: the attempts index, the Message-ID
 * index, then each record's attempt hash and Message-ID key. ARGV: TTL, most entries, the
 * records as one JSON array of {t: time, e: envelope hash, a: KEYS index of its attempt hash,
 * m: of its Message-ID key or 0, h: Message-ID hash, f: other fields} (one argument costs the
 * client a fraction of twenty per record), and the prefixes of attempt hashes and Message-ID
 * keys. A retry keeps the time of the first deferral. Each index is then trimmed (too old,
 * then the oldest past the most entries, MAX_TRIMMED_PER_WRITE in all), deleting the keys of
 * what leaves it; those keys are named from the prefixes, not KEYS: a single Redis only.
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

/** Only if the hash is still there: one expired or trimmed meanwhile must not come back without a TTL. One key: Cluster-safe. */
const MARK_RETURNED_LUA = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'returned', ARGV[1], 'returned_from', ARGV[2])
return 1`

/** Whether the attempt hash `key` was there and is now marked as returned at `now` from `from`. */
export async function markReturned(client: RedisClient, key: string, now: number, from: string): Promise<boolean> {
  return Number(await client.eval(MARK_RETURNED_LUA, 1, key, String(now), from)) === 1
}

/** Writes follow-up records; never delays or fails the caller, reports failures to onWriteError. */
export interface AttemptWriter {
  record(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void
  /** Sends the records still waiting (on close). */
  flush(): Promise<void>
}

type WriterOptions = Pick<RedisStoreOptions, 'attemptWriteMs' | 'onWriteError'>

/** The record `make` builds; null (reported like a failed write) when it throws. */
function build(make: () => AttemptRecord, opts: WriterOptions): AttemptRecord | null {
  try {
    return make()
  } catch (err) {
    opts.onWriteError?.('follow-up record', err as Error)
    return null
  }
}

/** Records of one event-loop turn or write window, not built yet. */
interface AttemptBatch {
  ttlSec: number
  maxEntries: number
  makes: Array<() => AttemptRecord>
  /** The write window's timer, when the batch waits for it. */
  timer: NodeJS.Timeout | null
}

/**
 * A single Redis (or Sentinel): records go out together, in order, in one RECORD_ATTEMPT_LUA
 * call at the end of the event-loop turn, or under load at the end of the write window
 * (attemptWriteMs): each client call costs Haraka far more CPU than a record in it.
 */
export class ScriptAttemptWriter implements AttemptWriter {
  private waiting: AttemptBatch | null = null
  /** When the last call was sent (performance.now()), for attemptWriteMs. */
  private sent = -Infinity

  constructor(
    private readonly client: Redis,
    private readonly keys: Keys,
    private readonly opts: WriterOptions,
  ) {
    if (!(RECORD_ATTEMPT in client.scriptsSet)) client.defineCommand(RECORD_ATTEMPT, { lua: RECORD_ATTEMPT_LUA })
  }

  record(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void {
    let b = this.waiting
    if (b && (b.ttlSec !== ttlSec || b.maxEntries !== maxEntries)) {
      void this.flush()
      b = null
    }
    if (!b) {
      b = { ttlSec, maxEntries, makes: [], timer: null }
      this.waiting = b
      const wait = this.sent + (this.opts.attemptWriteMs ?? 0) - performance.now()
      const mine = b
      // Only this batch, unless it went already (full, or a config change).
      const send = (): void => void (this.waiting === mine && this.flush())
      if (wait > 0) {
        b.timer = setTimeout(send, wait)
        b.timer.unref()
      } else setImmediate(send)
    }
    b.makes.push(make)
    if (b.makes.length >= MAX_ATTEMPTS_PER_CALL) void this.flush()
  }

  /** Builds the waiting records and sends them in one script call. */
  async flush(): Promise<void> {
    const b = this.waiting
    this.waiting = null
    if (!b) return
    if (b.timer) clearTimeout(b.timer)
    this.sent = performance.now()
    const k = this.keys
    const keys = [k.attempts, k.attemptMessageIds]
    const records: Array<{ t: string; e: string; a: number; m: number; h?: string; f: Record<string, string> }> = []
    for (const make of b.makes) {
      const r = build(make, this.opts)
      if (!r) continue
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
}

interface Trim {
  cutoff: number
  maxEntries: number
}

/**
 * A Cluster: each record at once, its commands one by one (its keys live in different
 * slots), then the trim RECORD_ATTEMPT_LUA does, command by command. One trim at a time; a
 * record trimmed while its commands are still on their way to other nodes may leave its key
 * until its TTL: evidence, not mail.
 */
export class ClusterAttemptWriter implements AttemptWriter {
  private trimming = false
  /** The latest trim asked for while one runs: run by it when it ends. */
  private trimNext: Trim | null = null

  constructor(
    private readonly client: Cluster,
    private readonly keys: Keys,
    private readonly opts: WriterOptions,
  ) {}

  record(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void {
    const built = build(make, this.opts)
    if (!built) return
    const { envelopeHash, midHash, fields } = built
    const k = this.keys
    const now = Number(fields.time)
    // A retry of the same envelope keeps the time of the first deferral.
    const { time: _first, ...rest } = fields
    const cmds: Command[] = [
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
        return this.trim({ cutoff: now - ttlSec, maxEntries })
      })
      .catch((err: Error) => this.opts.onWriteError?.('follow-up record', err))
  }

  /** Each record is sent at once: nothing waits. */
  async flush(): Promise<void> {}

  /** After a failure, the next write's trim catches up. */
  private async trim(t: Trim): Promise<void> {
    this.trimNext = t
    if (this.trimming) return
    this.trimming = true
    try {
      for (let next = this.takeTrim(); next; next = this.takeTrim()) {
        await this.trimIndex(this.keys.attempts, (h) => this.keys.attempt(h), next)
        await this.trimIndex(this.keys.attemptMessageIds, (h) => this.keys.attemptByMessageId(h), next)
      }
    } finally {
      this.trimming = false
      this.trimNext = null
    }
  }

  private takeTrim(): Trim | null {
    const t = this.trimNext
    this.trimNext = null
    return t
  }

  /** One index: entries older than the cutoff, then the oldest past maxEntries, each with its key. */
  private async trimIndex(index: string, keyOf: (member: string) => string, { cutoff, maxEntries }: Trim): Promise<void> {
    const c = this.client
    const gone = await c.zrangebyscore(index, '-inf', cutoff, 'LIMIT', 0, MAX_TRIMMED_PER_WRITE)
    const over = Math.min(MAX_TRIMMED_PER_WRITE - gone.length, (await c.zcard(index)) - gone.length - maxEntries)
    if (over > 0) gone.push(...(await c.zrange(index, String(gone.length), String(gone.length + over - 1))))
    if (gone.length === 0) return
    await Promise.all(gone.map((h) => c.del(keyOf(h))))
    await c.zrem(index, ...gone)
  }
}
