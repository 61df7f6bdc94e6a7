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

// The members of the staging set and of the source set are each scanned once (SSCAN inside
// the script: no million-element reply table in Redis's Lua heap). Neither scanned set is
// written while it is scanned, so the scan returns each member once.
// A field is "ours" when its value is the tag, or the tag followed by a space and text.
const APPLY = `
local list, src, stage = KEYS[1], KEYS[2], KEYS[3]
local tag, dry, want = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local function ours(v) return v == tag or (v ~= false and string.sub(v, 1, #tag + 1) == tag .. ' ') end
local added, removed, kept, elsewhere, withheld = 0, 0, 0, 0, 0
local drop, addEx, remEx = {}, {}, {}
local cursor = '0'
repeat
  local r = redis.call('SSCAN', stage, cursor, 'COUNT', 1000)
  cursor = r[1]
  for _, m in ipairs(r[2]) do
    local v = redis.call('HGET', list, m)
    if redis.call('SISMEMBER', src, m) == 1 then
      if v == false then withheld = withheld + 1
      elseif ours(v) then kept = kept + 1
      else elsewhere = elsewhere + 1 end
    elseif v == false then
      added = added + 1
      if #addEx < want then addEx[#addEx + 1] = m end
      if not dry then redis.call('HSET', list, m, tag) end
    elseif ours(v) then
      kept = kept + 1
    else
      elsewhere = elsewhere + 1
      drop[#drop + 1] = m
    end
  end
until cursor == '0'
cursor = '0'
repeat
  local r = redis.call('SSCAN', src, cursor, 'COUNT', 1000)
  cursor = r[1]
  for _, m in ipairs(r[2]) do
    if redis.call('SISMEMBER', stage, m) == 0 then
      local v = redis.call('HGET', list, m)
      if v ~= false and ours(v) then
        removed = removed + 1
        if #remEx < want then remEx[#remEx + 1] = m end
        if not dry then redis.call('HDEL', list, m) end
      end
    end
  end
until cursor == '0'
local owned = 0
if dry then
  owned = redis.call('SCARD', stage) - #drop
  redis.call('DEL', stage)
else
  for i = 1, #drop, 1000 do redis.call('SREM', stage, unpack(drop, i, math.min(i + 999, #drop))) end
  owned = redis.call('SCARD', stage)
  if owned > 0 then
    redis.call('RENAME', stage, src)
    redis.call('PERSIST', src)
  else
    redis.call('DEL', src, stage)
  end
end
return {added, removed, kept, elsewhere, withheld, owned, addEx, remEx}
`

const REMOVE = `
local list, src = KEYS[1], KEYS[2]
local tag, dry = ARGV[1], ARGV[2] == '1'
local function ours(v) return v == tag or (v ~= false and string.sub(v, 1, #tag + 1) == tag .. ' ') end
local removed, left = 0, 0
local cursor = '0'
repeat
  local r = redis.call('SSCAN', src, cursor, 'COUNT', 1000)
  cursor = r[1]
  for _, m in ipairs(r[2]) do
    local v = redis.call('HGET', list, m)
    if v ~= false and ours(v) then
      removed = removed + 1
      if not dry then redis.call('HDEL', list, m) end
    else
      left = left + 1
    end
  end
until cursor == '0'
if not dry then redis.call('DEL', src) end
return {removed, left}
`

type Scripts = {
  mx6SyncApply(list: string, src: string, stage: string, tag: string, dry: string, want: number): Promise<[number, number, number, number, number, number, string[], string[]]>
  mx6SyncRemove(list: string, src: string, tag: string, dry: string): Promise<[number, number]>
}

function scripts(redis: RedisClient): Scripts {
  if (!('mx6SyncApply' in redis.scriptsSet)) {
    redis.defineCommand('mx6SyncApply', { numberOfKeys: 3, lua: APPLY })
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

  async add(entry: string): Promise<void> {
    this.batch.push(entry)
    if (this.batch.length >= STAGE_BATCH) await this.send()
  }

  private async send(): Promise<void> {
    if (this.batch.length === 0) return
    const members = this.batch
    this.batch = []
    this.pending.push(this.redis.sadd(this.key, ...members).then((n) => void (this.distinct += n)))
    this.pending.push(this.redis.expire(this.key, STAGE_TTL))
    while (this.pending.length > IN_FLIGHT * 2) await this.pending.shift()
  }

  /** Sends what is left and waits for every answer (the first error is thrown). */
  async flush(): Promise<void> {
    await this.send()
    const all = this.pending.splice(0)
    await Promise.all(all)
  }

  /** Drops the staging set (a refused or dry run), whatever state it is in. */
  async discard(): Promise<void> {
    await Promise.allSettled(this.pending.splice(0))
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

/** Applies (or, dry, only counts) the staged state of a source; the staging set is gone afterwards. */
export async function applyStage(redis: RedisClient, keys: { list: string; source: string; stage: string }, tag: string, dry: boolean): Promise<ApplyResult> {
  const t0 = process.hrtime.bigint()
  const r = await scripts(redis).mx6SyncApply(keys.list, keys.source, keys.stage, tag, dry ? '1' : '0', EXAMPLES)
  const scriptSeconds = Number(process.hrtime.bigint() - t0) / 1e9
  const [added, removed, kept, ownedElsewhere, withheld, owned, addedExamples, removedExamples] = r
  return { added, removed, kept, ownedElsewhere, withheld, owned, addedExamples, removedExamples, scriptSeconds }
}

/** Removes exactly the entries a source still owns (dry: counts them); `left`: members the operator or another source holds now. */
export async function removeSource(redis: RedisClient, keys: { list: string; source: string }, tag: string, dry: boolean): Promise<{ removed: number; left: number }> {
  const [removed, left] = await scripts(redis).mx6SyncRemove(keys.list, keys.source, tag, dry ? '1' : '0')
  return { removed, left }
}
