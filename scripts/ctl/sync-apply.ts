// mx6ctl sync, the Redis part: entries staged in a set that expires, then one script that
// turns the list hash into the new state of the source (readers see before or after, never
// half), and the one that removes a source. The list hash, the source set and the staging
// set share a Cluster slot (see Keys.source), so both scripts run on a Cluster too.
import crypto from 'node:crypto'
import type { RedisClient } from '../../plugins/lib/redis'

/** A crashed run's staging set disappears by itself after this long (seconds). */
export const STAGE_TTL = 3600

/** Entries per SADD, and SADDs in flight at once: bounded memory, few round trips. */
export const STAGE_BATCH = 5000
const IN_FLIGHT = 4

/** How many example additions and removals a dry run shows. */
export const EXAMPLES = 20

// Writes happen in one script (APPLY), which touches only what changes: the entries new to
// the source (SDIFFSTORE stage - src into a scratch key of the same slot, the difference at
// C speed, then a scan of it) and the ones gone from the file (src - stage, likewise). The
// entries that stay are only counted (kept, withheld, owned elsewhere now), and that read
// needs no atomicity: COUNT does it beforehand in slices, so a re-import of a million-line
// list with a small delta holds Redis for a fraction of the time. Scans run inside the
// scripts (no million-element reply in Redis's Lua heap); no scanned set is written while it
// is scanned, so each member comes once.
// A field is "ours" when its value is the tag, or the tag followed by a space and text.
const OURS = `local function ours(v) return v == tag or (v ~= false and string.sub(v, 1, #tag + 1) == tag .. ' ') end`
// Every member of a set, a thousand per SSCAN, each given to fn with its value in the list hash.
const EACH = `local function each(set, fn)
  local cursor = '0'
  repeat
    local r = redis.call('SSCAN', set, cursor, 'COUNT', 1000)
    cursor = r[1]
    for _, m in ipairs(r[2]) do fn(m, redis.call('HGET', list, m)) end
  until cursor == '0'
end`

const COUNT = `
local list, src, stage = KEYS[1], KEYS[2], KEYS[3]
local tag = ARGV[1]
${OURS}
local kept, elsewhere, withheld = 0, 0, 0
local r = redis.call('SSCAN', stage, ARGV[2], 'COUNT', tonumber(ARGV[3]))
for _, m in ipairs(r[2]) do
  if redis.call('SISMEMBER', src, m) == 1 then
    local v = redis.call('HGET', list, m)
    if v == false then withheld = withheld + 1
    elseif ours(v) then kept = kept + 1
    else elsewhere = elsewhere + 1 end
  end
end
return {r[1], kept, elsewhere, withheld}
`

const APPLY = `
local list, src, stage, scratch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local tag, dry, want = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
${OURS}
${EACH}
local added, removed, kept, elsewhere = 0, 0, 0, 0
local drop, addEx, remEx = {}, {}, {}
redis.call('SDIFFSTORE', scratch, stage, src)
each(scratch, function(m, v)
  if v == false then
    added = added + 1
    if #addEx < want then addEx[#addEx + 1] = m end
    if not dry then redis.call('HSET', list, m, tag) end
  elseif ours(v) then
    kept = kept + 1
  else
    elsewhere = elsewhere + 1
    drop[#drop + 1] = m
  end
end)
redis.call('SDIFFSTORE', scratch, src, stage)
each(scratch, function(m, v)
  if ours(v) then
    removed = removed + 1
    if #remEx < want then remEx[#remEx + 1] = m end
    if not dry then redis.call('HDEL', list, m) end
  end
end)
redis.call('UNLINK', scratch)
local owned = 0
if dry then
  owned = redis.call('SCARD', stage) - #drop
  redis.call('UNLINK', stage)
else
  for i = 1, #drop, 1000 do redis.call('SREM', stage, unpack(drop, i, math.min(i + 999, #drop))) end
  owned = redis.call('SCARD', stage)
  if owned > 0 then
    -- UNLINK first: RENAME would free the old set in the script's time.
    redis.call('UNLINK', src)
    redis.call('RENAME', stage, src)
    redis.call('PERSIST', src)
  else
    redis.call('UNLINK', src, stage)
  end
end
return {added, removed, kept, elsewhere, owned, addEx, remEx}
`

const REMOVE = `
local list, src = KEYS[1], KEYS[2]
local tag, dry = ARGV[1], ARGV[2] == '1'
${OURS}
${EACH}
local removed, left = 0, 0
each(src, function(m, v)
  if ours(v) then
    removed = removed + 1
    if not dry then redis.call('HDEL', list, m) end
  else
    left = left + 1
  end
end)
if not dry then redis.call('UNLINK', src) end
return {removed, left}
`

type Scripts = {
  mx6SyncCount(list: string, src: string, stage: string, tag: string, cursor: string, count: number): Promise<[string, number, number, number]>
  mx6SyncApply(list: string, src: string, stage: string, scratch: string, tag: string, dry: string, want: number): Promise<[number, number, number, number, number, string[], string[]]>
  mx6SyncRemove(list: string, src: string, tag: string, dry: string): Promise<[number, number]>
}

function scripts(redis: RedisClient): Scripts {
  if (!('mx6SyncApply' in redis.scriptsSet)) {
    redis.defineCommand('mx6SyncCount', { numberOfKeys: 3, lua: COUNT })
    redis.defineCommand('mx6SyncApply', { numberOfKeys: 4, lua: APPLY })
    redis.defineCommand('mx6SyncRemove', { numberOfKeys: 2, lua: REMOVE })
  }
  return redis as unknown as Scripts
}

/** A random suffix for one run's staging set. */
export function runId(): string {
  return crypto.randomBytes(6).toString('hex')
}

/**
 * Collects canonical entries into the staging set: SADD of STAGE_BATCH members, at most
 * IN_FLIGHT of them unanswered (the file is read no faster than Redis takes it), each
 * followed by EXPIRE so the set never outlives a crashed run by more than STAGE_TTL.
 * `distinct` counts the members that were new to the set (the rest are duplicates).
 */
export class Stager {
  distinct = 0
  private batch: string[] = []
  private readonly pending: Array<Promise<unknown>> = []
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
  ) {}

  /** Queues an entry; a full batch is sent at once (call drain() between chunks of input). */
  add(entry: string): void {
    this.batch.push(entry)
    if (this.batch.length >= STAGE_BATCH) this.send()
  }

  private send(): void {
    if (this.batch.length === 0) return
    const members = this.batch
    this.batch = []
    const sent = this.redis.sadd(this.key, ...members).then((n) => void (this.distinct += n))
    // Settled to the error or null: a batch nobody waits for yet never rejects unhandled.
    this.pending.push(Promise.all([sent, this.redis.expire(this.key, STAGE_TTL)]).then(() => null, (err: unknown) => err))
  }

  /** Waits while more than IN_FLIGHT batches are unanswered (the first error is thrown). */
  async drain(): Promise<void> {
    while (this.pending.length > IN_FLIGHT) {
      const err = await this.pending.shift()
      if (err) throw err
    }
  }

  /** Sends what is left and waits for every answer (the first error is thrown). */
  async flush(): Promise<void> {
    this.send()
    const err = (await Promise.all(this.pending.splice(0))).find((e) => e)
    if (err) throw err
  }

  /** Drops the staging set (a refused or dry run), whatever state it is in. */
  async discard(): Promise<void> {
    await Promise.all(this.pending.splice(0))
    await this.redis.del(this.key)
  }
}

export interface ApplyResult {
  added: number
  removed: number
  kept: number
  ownedElsewhere: number
  withheld: number
  owned: number
  addedExamples: string[]
  removedExamples: string[]
  /** How long the script held Redis, as seen from here (one round trip more). */
  scriptSeconds: number
}

/** Members of the staging set COUNT looks at per call: each call holds Redis a few milliseconds. */
const COUNT_SLICE = 20_000

/**
 * Applies (or, dry, only counts) the staged state of a source; the staging set is gone
 * afterwards. The entries that stay are counted first, in slices; then one script writes.
 */
export async function applyStage(redis: RedisClient, keys: { list: string; source: string; stage: string }, tag: string, dry: boolean): Promise<ApplyResult> {
  const s = scripts(redis)
  let kept = 0
  let ownedElsewhere = 0
  let withheld = 0
  // A first import has nothing that stays: no need to look.
  let cursor = (await redis.exists(keys.source)) ? '0' : null
  while (cursor !== null) {
    const [next, k, e, w] = await s.mx6SyncCount(keys.list, keys.source, keys.stage, tag, cursor, COUNT_SLICE)
    cursor = String(next) === '0' ? null : String(next)
    kept += k
    ownedElsewhere += e
    withheld += w
  }
  const t0 = process.hrtime.bigint()
  const r = await s.mx6SyncApply(keys.list, keys.source, keys.stage, `${keys.stage}:scratch`, tag, dry ? '1' : '0', EXAMPLES)
  const scriptSeconds = Number(process.hrtime.bigint() - t0) / 1e9
  const [added, removed, adopted, newElsewhere, owned, addedExamples, removedExamples] = r
  return { added, removed, kept: kept + adopted, ownedElsewhere: ownedElsewhere + newElsewhere, withheld, owned, addedExamples, removedExamples, scriptSeconds }
}

/** Removes exactly the entries a source still owns (dry: counts them); `left`: members the operator or another source holds now. */
export async function removeSource(redis: RedisClient, keys: { list: string; source: string }, tag: string, dry: boolean): Promise<{ removed: number; left: number }> {
  const [removed, left] = await scripts(redis).mx6SyncRemove(keys.list, keys.source, tag, dry ? '1' : '0')
  return { removed, left }
}
