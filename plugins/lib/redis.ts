// The Redis connection shared by the suite's plugins and mx6ctl.
import fs from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import { DEFAULT_PREFIX, validPrefix } from './keys'
import type { Section, SettingsReader } from './settings'

export interface RedisSettings {
  /** redis:// or rediss:// URL; when set it wins over host/port/db/tls. */
  url: string
  /** @default 127.0.0.1 (like Haraka's own redis plugin) */
  host: string
  /** @default 6379 */
  port: number
  /** @default 0 */
  db: number
  /** ACL user name; empty for the default user. */
  username: string
  /** Never logged. */
  password: string
  /** TLS to a plain host/port (a rediss:// URL implies it). */
  tls: boolean
  /** PEM file of the CA that signed the server certificate; empty: the system's CAs. */
  tlsCa: string
  /** @default mx6: */
  prefix: string
  /** Bound for one lookup in ms; past it the IPv6 peer is deferred. @default 500 */
  timeoutMs: number
  /** @default 2000 */
  connectTimeoutMs: number
}

export const REDIS_DEFAULTS: RedisSettings = {
  url: '',
  host: '127.0.0.1',
  port: 6379,
  db: 0,
  username: '',
  password: '',
  tls: false,
  tlsCa: '',
  prefix: DEFAULT_PREFIX,
  timeoutMs: 500,
  connectTimeoutMs: 2000,
}

export function readRedisSettings(r: SettingsReader, sec: Section): RedisSettings {
  const d = REDIS_DEFAULTS
  return {
    url: r.str(sec, 'redis', 'url', d.url, (s) => (/^rediss?:\/\//.test(s) ? null : 'expected a redis:// or rediss:// URL')),
    host: r.str(sec, 'redis', 'host', d.host),
    port: r.int(sec, 'redis', 'port', d.port, 1, 65535),
    db: r.int(sec, 'redis', 'db', d.db, 0, 1000),
    username: r.str(sec, 'redis', 'username', d.username),
    password: r.str(sec, 'redis', 'password', d.password),
    tls: r.bool(sec, 'redis', 'tls', d.tls),
    tlsCa: r.str(sec, 'redis', 'tls_ca', d.tlsCa, (f) => (fs.existsSync(f) ? null : 'no such file')),
    prefix: r.str(sec, 'redis', 'prefix', d.prefix, (s) => (validPrefix(s) ? null : 'printable ASCII without spaces or braces, at most 64 characters')),
    timeoutMs: r.int(sec, 'redis', 'timeout', d.timeoutMs, 10, 60000),
    connectTimeoutMs: r.int(sec, 'redis', 'connect_timeout', d.connectTimeoutMs, 100, 60000),
  }
}

/** Where we connect, for logs: never the password. */
export function describeRedis(s: RedisSettings): string {
  if (s.url) {
    try {
      const u = new URL(s.url)
      u.password = ''
      return u.toString()
    } catch {
      return 'redis (unparseable url)'
    }
  }
  return `${s.tls ? 'rediss' : 'redis'}://${s.username ? `${s.username}@` : ''}${s.host}:${s.port}/${s.db}`
}

/**
 * A client that fails fast instead of queueing: while Redis is away, lookups
 * reject at once (the peer gets a 4xx) and the client keeps reconnecting.
 */
export function createRedis(s: RedisSettings, extra: RedisOptions = {}): Redis {
  const opts: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: s.timeoutMs,
    connectTimeout: s.connectTimeoutMs,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    ...extra,
  }
  if (s.username) opts.username = s.username
  if (s.password) opts.password = s.password
  const tls = s.tls || s.url.startsWith('rediss://')
  if (tls) opts.tls = s.tlsCa ? { ca: fs.readFileSync(s.tlsCa) } : {}
  if (s.url) return new Redis(s.url, opts)
  return new Redis({ ...opts, host: s.host, port: s.port, db: s.db })
}

/**
 * A client whose connection errors are logged once per change of message
 * (ioredis repeats the same error on every reconnect attempt), each followed
 * by what it means for mail (`consequence`).
 */
export function createLoggedRedis(s: RedisSettings, warn: (msg: string) => void, consequence: string): Redis {
  const client = createRedis(s)
  let last = ''
  client.on('error', (err: Error) => {
    if (err.message !== last) warn(`redis ${describeRedis(s)}: ${err.message} (${consequence})`)
    last = err.message
  })
  client.on('ready', () => {
    last = ''
  })
  return client
}
