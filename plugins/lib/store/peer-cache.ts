// The peer list cache: answers of ip:allow, ip:green and domain:allow kept in process
// while Redis reports every change of those hashes (see ../tracking.ts).
import type { Keys } from '../keys'
import { memo } from '../memo'
import { isCluster, type RedisClient } from '../redis'
import { TrackedCache } from '../tracking'
import type { Hit, ListCache, LookupReply, RedisStoreOptions } from './types'

/** Per hash of one script call: its hit, null (looked, none) or undefined (not looked at: an earlier hash hit). */
export type ScriptHits = Array<Hit | null | undefined>

/** Which of the peer's hashes one script call asks. */
export type PeerHashes = 'allow+green' | 'allow' | 'green'

// By the peer's canonical address (its /128, the first candidate): a repeat peer is found
// without building its candidates. Made once per recent address, not per lookup.
const peerKeys = memo(4096, (ipv6: string): Readonly<Record<PeerHashes, string>> => ({ 'allow+green': `allow+green|${ipv6}`, allow: `allow|${ipv6}`, green: `green|${ipv6}` }))

/**
 * What lookup() reads and writes through, and what it answers as the store's ListCache.
 * Without a cache (a Cluster, entries=0) every key is '' and nothing is held.
 */
export class PeerCache implements ListCache {
  private readonly tracked: TrackedCache<ScriptHits> | null = null

  constructor(client: RedisClient, keys: Keys, opts: RedisStoreOptions['peerCache']) {
    if (!(opts && opts.entries > 0)) return
    // Tracking is per node, and the hashes live on different nodes of a Cluster.
    if (isCluster(client)) opts.onState?.(false, 'not used on a Redis Cluster')
    else this.tracked = new TrackedCache<ScriptHits>(client, [keys.ipAllow, keys.ipGreen, keys.domainAllow], { maxEntries: opts.entries, maxAgeMs: opts.maxAgeMs, onState: opts.onState }).start()
  }

  /** Whether answers are kept and given now (tracking confirmed). */
  get on(): boolean {
    return this.tracked?.enabled ?? false
  }

  peer(ipv6: string, green: boolean): LookupReply | undefined {
    if (!this.tracked?.enabled) return undefined
    // The one call lookup() makes for the peer's lists on a single Redis.
    const hits = this.tracked.get(peerKeys(ipv6)[green ? 'allow+green' : 'allow'])
    if (hits === undefined) return undefined
    const reply: LookupReply = {}
    if (hits[0] !== undefined) reply.ipAllow = hits[0]
    if (green && hits[1] !== undefined) reply.ipGreen = hits[1]
    return reply
  }

  domainAllow(candidates: readonly string[]): Hit | null | undefined {
    if (!this.tracked?.enabled) return undefined
    const hits = this.get(this.domainKey(candidates))
    return hits === undefined ? undefined : (hits[0] ?? null)
  }

  /** The key of a script call for the peer `ipv6` asking `hashes`. */
  callKey(hashes: PeerHashes, ipv6: string): string {
    return this.tracked ? peerKeys(ipv6)[hashes] : ''
  }

  /** The key of a domain:allow lookup of these candidates (its value: [hit or null]). */
  domainKey(candidates: readonly string[]): string {
    return this.tracked && candidates.length ? `domain|${candidates.join(' ')}` : ''
  }

  get(key: string): ScriptHits | undefined {
    return key ? this.tracked?.get(key) : undefined
  }

  /** Taken before a read is sent: its answer is kept only if nothing changed meanwhile. */
  token(): number | null {
    return this.tracked?.token() ?? null
  }

  set(token: number | null, key: string, hits: ScriptHits): void {
    if (key) this.tracked?.set(token, key, hits)
  }

  close(): void {
    this.tracked?.close()
  }
}
