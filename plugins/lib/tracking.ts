// A client-side cache kept correct by Redis itself (server-assisted client-side
// caching, https://redis.io/docs/latest/develop/reference/client-side-caching/):
// CLIENT TRACKING in broadcast mode makes Redis announce every change of a key
// under the tracked prefixes on a second connection, and any announcement
// empties the cache. An entry added or removed with redis-cli is therefore seen
// by the very next lookup, as without the cache.
import type { Redis } from 'ioredis'
import { setBounded } from './memo'

/** Where Redis publishes invalidations for a client whose tracking is redirected (RESP2). */
export const INVALIDATE_CHANNEL = '__redis__:invalidate'

export interface TrackedCacheOptions {
  /** At most this many answers are kept (oldest dropped first). */
  maxEntries: number
  /**
   * An answer is used at most this long (ms), whatever becomes of the
   * invalidation connection: the bound on staleness should it break silently.
   */
  maxAgeMs: number
  /** Told when the cache switches on, or off and why (for the log). */
  onState?: (on: boolean, why: string) => void
  now?: () => number
}

interface Entry<V> {
  value: V
  at: number
}

/**
 * Usage: `const t = cache.token()` before sending a read, `cache.set(t, key,
 * answer)` when it answers. The answer is kept only if tracking was on before
 * the read was sent and nothing was invalidated (or lost) since: an
 * invalidation that overtakes the reply discards it.
 */
export class TrackedCache<V> {
  private readonly entries = new Map<string, Entry<V>>()
  private generation = 0
  private on = false
  private why = ''
  private sub: Redis | null = null
  private subId: number | null = null
  /** Each attempt to switch tracking on; a newer one supersedes an older one still waiting. */
  private attempt = 0
  private closed = false
  private readonly now: () => number

  constructor(
    private readonly main: Redis,
    private readonly prefixes: string[],
    private readonly opts: TrackedCacheOptions,
  ) {
    this.now = opts.now ?? Date.now
  }

  /** Opens the invalidation connection and switches tracking on (again after every reconnect). */
  start(): this {
    // RESP2: ioredis hands redirected invalidations to 'message' listeners only on a RESP2 subscriber.
    const sub = this.main.duplicate({ protocol: 2, autoResubscribe: false, enableOfflineQueue: false, lazyConnect: false })
    this.sub = sub
    // Connection trouble is reported by the main client's own listener; this one only must not throw.
    sub.on('error', () => undefined)
    sub.on('ready', () => void this.subscribe(sub))
    sub.on('close', () => {
      this.subId = null
      this.off('the invalidation connection closed')
    })
    sub.on('message', (channel: string) => {
      if (channel === INVALIDATE_CHANNEL) this.flush()
    })
    this.main.on('ready', () => void this.track())
    this.main.on('close', () => this.off('the connection closed'))
    return this
  }

  get enabled(): boolean {
    return this.on
  }

  get size(): number {
    return this.entries.size
  }

  get(key: string): V | undefined {
    if (!this.on) return undefined
    const e = this.entries.get(key)
    if (!e) return undefined
    if (this.now() - e.at > this.opts.maxAgeMs) {
      this.entries.delete(key)
      return undefined
    }
    return e.value
  }

  /** Taken before a read is sent; null when answers cannot be kept now. */
  token(): number | null {
    return this.on ? this.generation : null
  }

  set(token: number | null, key: string, value: V): void {
    if (token === null || !this.on || token !== this.generation) return
    setBounded(this.entries, key, { value, at: this.now() }, this.opts.maxEntries)
  }

  close(): void {
    this.closed = true
    this.off(null)
    this.sub?.disconnect()
    this.sub = null
  }

  private flush(): void {
    this.generation++
    this.entries.clear()
  }

  /**
   * Off (and empty). Reported when the cache was on, or when Redis refused it
   * for a reason not reported yet (`refusal`); reconnect attempts are not.
   */
  private off(why: string | null, refusal = false): void {
    this.flush()
    const was = this.on
    this.on = false
    if (why === null) return
    if (was || (refusal && why !== this.why)) this.opts.onState?.(false, why)
    if (refusal) this.why = why
  }

  private async subscribe(sub: Redis): Promise<void> {
    try {
      const id = Number(await sub.client('ID'))
      await sub.subscribe(INVALIDATE_CHANNEL)
      if (sub !== this.sub) return
      this.subId = id
      await this.track()
    } catch (err) {
      this.off(`cannot subscribe to ${INVALIDATE_CHANNEL}: ${(err as Error).message}`, true)
    }
  }

  private async track(): Promise<void> {
    const id = this.subId
    if (this.closed || id === null || this.main.status !== 'ready') return
    const attempt = ++this.attempt
    this.off(null)
    try {
      // OFF first: the prefixes of a client that already tracks may not be given again.
      await this.main.call('CLIENT', 'TRACKING', 'OFF')
      await this.main.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', id, 'BCAST', ...this.prefixes.flatMap((p) => ['PREFIX', p]))
    } catch (err) {
      if (attempt === this.attempt) this.off(`CLIENT TRACKING refused: ${(err as Error).message}`, true)
      return
    }
    if (attempt !== this.attempt || id !== this.subId || this.closed || this.main.status !== 'ready') return
    this.flush()
    this.on = true
    this.why = ''
    this.opts.onState?.(true, `Redis reports changes of ${this.prefixes.join(', ')} on a second connection`)
  }
}
