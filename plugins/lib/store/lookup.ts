// One LookupRequest, one round trip: the pipeline (less what the peer list cache holds) and its reply.
import { joinedPrefixes } from '../ip'
import type { Keys } from '../keys'
import { StoreReplyError, toStoreError } from './errors'
import type { PeerCache, PeerHashes, ScriptHits } from './peer-cache'
import type { Command, Hit, History, LookupReply, LookupRequest } from './types'

/**
 * The CIDR lists' lookup inside Redis. KEYS: hashes in priority order (ip:allow, then
 * ip:green); ARGV[1]: the candidates, most specific first, joined by newlines. Returns
 * [key index, field, value] of the first hit, or {}. One argument out and only the hit back
 * costs the client a fraction of what 129 arguments and 129-field HMGET replies do.
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
export const FIRST_FIELD = 'mx6FirstField'

/** One script call: which reply field each of its hashes answers, the hash, the candidates. */
type PeerCall = Array<['ipAllow' | 'ipGreen', string, readonly string[]]>
type GreenField = 'hostGreen' | 'asnGreen' | 'domainGreen' | 'arcTrusted'

/** A lookup's commands, and what reading their replies needs. */
export interface LookupPlan {
  cmds: Command[]
  calls: PeerCall[]
  callKeys: string[]
  /** Per call, the cache's answer; undefined: sent. */
  cached: Array<ScriptHits | undefined>
  domainKey: string
  domainHits: ScriptHits | undefined
  greens: Array<[GreenField, string, string[] | undefined]>
  token: number | null
}

/**
 * The peer's script calls: one for ip:allow and ip:green when they share the candidates
 * (ip:green is then skipped when ip:allow hits), else one per hash. Never one on a Cluster:
 * the two keys live in different slots.
 */
function peerCalls(req: LookupRequest, keys: Keys, oneCall: boolean): PeerCall[] {
  const hashes: PeerCall = []
  if (req.ipCandidates?.length) hashes.push(['ipAllow', keys.ipAllow, req.ipCandidates])
  if (req.ipGreenCandidates?.length) hashes.push(['ipGreen', keys.ipGreen, req.ipGreenCandidates])
  return oneCall && hashes.length === 2 && sameList(hashes[0][2], hashes[1][2]) ? [hashes] : hashes.map((x) => [x])
}

function hashesOf(call: PeerCall): PeerHashes {
  return call.length === 2 ? 'allow+green' : call[0][0] === 'ipAllow' ? 'allow' : 'green'
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]))
}

export function planLookup(req: LookupRequest, keys: Keys, cache: PeerCache, oneCall: boolean): LookupPlan {
  const calls = peerCalls(req, keys, oneCall)
  // Calls the cache answers are not sent: a repeat peer with nothing else to ask costs no round trip.
  const callKeys = calls.map((call) => cache.callKey(hashesOf(call), call[0][2][0]))
  const cached = callKeys.map((key) => cache.get(key))
  const domainKey = req.domainCandidates?.length ? cache.domainKey(req.domainCandidates) : ''
  const domainHits = cache.get(domainKey)
  const token = cache.token()
  const cmds: Command[] = []
  calls.forEach((call, j) => {
    if (cached[j] === undefined) cmds.push([FIRST_FIELD, call.length, ...call.map((x) => x[1]), joinedPrefixes(call[0][2])])
  })
  if (req.domainCandidates?.length && !domainHits) cmds.push(['hmget', keys.domainAllow, ...req.domainCandidates])
  for (const b of req.books ?? []) cmds.push(['smismember', keys.book(b.owner), ...b.members])
  const greens: LookupPlan['greens'] = [
    ['hostGreen', keys.hostGreen, req.hostGreenCandidates],
    ['asnGreen', keys.asnGreen, req.asnGreenCandidates],
    ['domainGreen', keys.domainGreen, req.domainGreenCandidates],
    ['arcTrusted', keys.arcTrusted, req.arcSealers],
  ]
  for (const [, key, fields] of greens) if (fields?.length) cmds.push(['hmget', key, ...fields])
  for (const d of req.historyDomains ?? []) cmds.push(['hmget', keys.history(d), 'count', 'first', 'last'])
  return { cmds, calls, callKeys, cached, domainKey, domainHits, greens, token }
}

/** The reply to `req` from the pipeline's results (in plan.cmds order), keeping fresh answers in the cache. */
export function readLookup(req: LookupRequest, plan: LookupPlan, results: Array<[Error | null, unknown]>, cache: PeerCache): LookupReply {
  const reply: LookupReply = {}
  let i = 0
  const next = (): unknown => {
    const [err, value] = results[i++]
    if (err) throw toStoreError(err)
    return value
  }
  for (const [n, call] of plan.calls.entries()) {
    let hits = plan.cached[n]
    if (hits === undefined) {
      hits = scriptHits(next(), call.length)
      cache.set(plan.token, plan.callKeys[n], hits)
    }
    for (let j = 0; j < call.length; j++) if (hits[j] !== undefined) reply[call[j][0]] = hits[j]
  }
  if (plan.domainHits) reply.domainAllow = plan.domainHits[0] ?? null
  else if (req.domainCandidates?.length) {
    reply.domainAllow = firstHit(req.domainCandidates, next())
    cache.set(plan.token, plan.domainKey, [reply.domainAllow])
  }
  if (req.books?.length) reply.books = req.books.map((b) => firstMember(b.members, next()))
  for (const [name, , fields] of plan.greens) if (fields?.length) reply[name] = firstHit(fields, next())
  if (req.historyDomains?.length) reply.history = req.historyDomains.map((d) => toHistory(d, next()))
  return reply
}

function scriptHits(value: unknown, keys: number): ScriptHits {
  if (!Array.isArray(value) || (value.length !== 0 && value.length !== 3)) throw new StoreReplyError('unexpected script reply')
  if (value.length === 0) return new Array<null>(keys).fill(null)
  const at = Number(value[0]) - 1
  return Array.from({ length: keys }, (_, i) => (i < at ? null : i === at ? { entry: String(value[1]), note: String(value[2]) } : undefined))
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

function toHistory(domain: string, values: unknown): History | null {
  if (!Array.isArray(values)) throw new StoreReplyError('unexpected HMGET reply')
  const [count, first, last] = values.map((v) => (v === null || v === undefined ? NaN : Number(v)))
  if (![count, first, last].every(Number.isFinite)) return null
  return { domain, count, first, last }
}
