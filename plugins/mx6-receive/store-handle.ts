// The plugin's Redis connection: its store, the log lines of its state, and the lint scan
// that follows it.
import { Keys } from '../lib/keys'
import { createRedisClient, describeRedis } from '../lib/redis'
import { RedisListStore, type ListCache, type ListStore } from '../lib/store'
import type { ReceiveConfig } from './config'
import { startLintScan } from './lint-scan'

/** The store and what goes with its connection. */
export interface StoreHandle {
  store: ListStore & { readonly cache?: ListCache }
  close(): void
}

interface PluginLog {
  loginfo(msg: string): void
  logwarn(msg: string): void
  logerror(msg: string): void
  logdebug(msg: string): void
}

export function openStore(cfg: ReceiveConfig, plugin: PluginLog & { redis: { peek(): StoreHandle | null } }): StoreHandle {
  const s = cfg.redis
  const where = `redis ${describeRedis(s)}`
  const client = createRedisClient(s)
  let lastError = ''
  let lost = false
  let stopLint: (() => void) | null = null
  // ioredis repeats the same error on every reconnect attempt: log changes only.
  client.on('error', (err: Error) => {
    if (err.message !== lastError) plugin.logerror(`${where}: ${err.message}; IPv6 peers are deferred until it is back`)
    lastError = err.message
  })
  client.on('close', () => {
    if (plugin.redis.peek() !== handle || lost) return
    lost = true
    plugin.logerror(`${where}: connection lost; IPv6 peers are deferred until it is back`)
  })
  client.on('ready', () => {
    if (lost || lastError) plugin.loginfo(`${where}: connected again`)
    lost = false
    lastError = ''
    if (!stopLint && cfg.lintInterval > 0) stopLint = startLintScan(client, new Keys(s.prefix), cfg.lintInterval, { warn: (m) => plugin.logwarn(m), debug: (m) => plugin.logdebug(m) })
  })
  const store = new RedisListStore(client, new Keys(s.prefix), {
    timeoutMs: s.timeoutMs,
    statsDays: cfg.statsDays,
    attemptWriteMs: cfg.followup.writeWindowMs,
    onWriteError: (what, err) => plugin.logwarn(`${what} not written: ${err.message}`),
    peerCache: {
      entries: cfg.cache.entries,
      maxAgeMs: cfg.cache.maxAgeSec * 1000,
      onState: (on, why) => plugin.loginfo(on ? `peer list cache on: ${why}` : `peer list cache off: ${why}; every peer lookup goes to Redis`),
    },
  })
  plugin.loginfo(`using ${where} prefix ${s.prefix}`)
  const handle: StoreHandle = {
    store,
    close: () => {
      stopLint?.()
      void store.close()
    },
  }
  return handle
}
