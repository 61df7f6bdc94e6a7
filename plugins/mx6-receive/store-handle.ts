// The plugin's Redis connection: its store, the log lines of its state, and the lint scan
// that follows it.
import type { Redis } from 'ioredis'
import { Keys } from '../lib/keys'
import { OutageLog } from '../lib/outage'
import { createRedisClient, describeRedis } from '../lib/redis'
import { RedisListStore, StoreUnavailableError, type ListCache, type ListStore } from '../lib/store'
import type { ReceiveConfig } from './config'
import { startLintScan } from './lint-scan'

/** The store and what goes with its connection. */
export interface StoreHandle {
  store: ListStore & { readonly cache?: ListCache }
  /** Redis being away, in the log: once when it starts, a summary a minute, once when it ends. */
  outage?: OutageLog
  close(): void
}

interface PluginLog {
  loginfo(msg: string): void
  logwarn(msg: string): void
  logerror(msg: string): void
  logdebug(msg: string): void
}

export function openStore(cfg: ReceiveConfig, plugin: PluginLog, source: string): StoreHandle {
  const s = cfg.redis
  const where = `redis ${describeRedis(s)}`
  const outage = new OutageLog(where, 'IPv6 peers are deferred', 'decisions deferred or writes dropped', { error: (m) => plugin.logerror(m), info: (m) => plugin.loginfo(m) })
  // Settings that do not parse: no Redis at all (never a fall back to some other server).
  if (s.invalid) {
    plugin.logerror(`redis settings invalid (${s.invalid}): no Redis is used; IPv6 peers are deferred, IPv4 is untouched`)
    return { store: new UnusableStore(`redis settings invalid: ${s.invalid}`), outage, close: () => undefined }
  }
  const client = createRedisClient(s)
  // ioredis reports a refused SELECT and goes on in database 0: the store waits for our own
  // SELECT to answer, and a refusal closes the connection.
  let usable = s.db === 0 || s.cluster.length > 0
  let stopLint: (() => void) | null = null
  let closing = false
  client.on('error', (err: Error) => outage.fail(err.message))
  client.on('close', () => closing || outage.fail('connection lost'))
  client.on('ready', () => {
    if (!usable) {
      ;(client as Redis).select(s.db).then(
        () => (usable = true),
        (err: Error) => {
          plugin.logerror(`${where}: database ${s.db} refused (${err.message}): no Redis is used; IPv6 peers are deferred`)
          client.disconnect()
        },
      )
    }
    outage.ok()
    if (!stopLint && cfg.lintInterval > 0) stopLint = startLintScan(client, new Keys(s.prefix), cfg.lintInterval, { warn: (m) => plugin.logwarn(m), debug: (m) => plugin.logdebug(m) })
  })
  const store = new RedisListStore(client, new Keys(s.prefix), {
    timeoutMs: s.timeoutMs,
    statsDays: cfg.statsDays,
    attemptWriteMs: cfg.followup.writeWindowMs,
    // During an outage a dropped write is counted in its summary, not logged each time.
    onWriteError: (what, err) => (outage.down ? outage.hit() : plugin.logwarn(`${what} not written: ${err.message}`)),
    peerCache: {
      entries: cfg.cache.entries,
      maxAgeMs: cfg.cache.maxAgeSec * 1000,
      onState: (on, why) => plugin.loginfo(on ? `peer list cache on: ${why}` : `peer list cache off: ${why}; every peer lookup goes to Redis`),
    },
  })
  plugin.loginfo(`using ${where} prefix ${s.prefix} (settings: ${source})`)
  return {
    store: usableOnly(store, () => usable),
    outage,
    close: () => {
      closing = true
      stopLint?.()
      outage.close()
      void store.close()
    },
  }
}

/** The store while `usable()` holds; until then its lookups fail as Redis being away would. */
function usableOnly(store: RedisListStore, usable: () => boolean): StoreHandle['store'] {
  return {
    cache: store.cache,
    lookup: (req) => (usable() ? store.lookup(req) : Promise.reject(new StoreUnavailableError('database not selected yet'))),
    spfGuess: (domain) => (usable() ? store.spfGuess(domain) : Promise.reject(new StoreUnavailableError('database not selected yet'))),
    recordAttempt: (make, ttl, max) => (usable() ? store.recordAttempt(make, ttl, max) : undefined),
    count: (fields) => (usable() ? store.count(fields) : undefined),
    close: () => store.close(),
  }
}

/** A store for settings that cannot be used: every lookup fails, nothing is written. */
class UnusableStore implements ListStore {
  constructor(private readonly why: string) {}
  lookup(): Promise<never> {
    return Promise.reject(new StoreUnavailableError(this.why))
  }
  spfGuess(): Promise<never> {
    return Promise.reject(new StoreUnavailableError(this.why))
  }
  recordAttempt(): void {}
  count(): void {}
  async close(): Promise<void> {}
}
