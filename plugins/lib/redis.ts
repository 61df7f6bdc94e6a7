// The Redis connection shared by the suite's plugins and mx6ctl.
import fs from 'node:fs'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { DEFAULT_PREFIX, validPrefix } from './keys'
import { OutageLog, type OutageLogger } from './outage'
import type { Section, SettingsReader } from './settings'

export interface RedisSettings {
  /** redis:// or rediss:// URL; when set it wins over host/port/db/tls. */
  url: string
  /** Redis Cluster seed nodes (host:port); when set the client is a cluster client. */
  cluster: string[]
  /** Sentinels (host:port) watching the master `sentinelName`; when set they tell where the master is. */
  sentinels: string[]
  /** @default mymaster */
  sentinelName: string
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
  /** Why these settings cannot be used (a value that does not parse): then no Redis is used at all. */
  invalid?: string
}

export const REDIS_DEFAULTS: RedisSettings = {
  url: '',
  cluster: [],
  sentinels: [],
  sentinelName: 'mymaster',
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

/**
 * The [redis] settings. A value that does not parse makes them invalid as a whole: falling
 * back to a default could mean some other Redis.
 */
export function readRedisSettings(r: SettingsReader, sec: Section): RedisSettings {
  const before = r.errors.length
  const s = redisSettings(r, sec)
  const problems = r.errors.splice(before)
  if (problems.length === 0) return s
  const invalid = problems.map((p) => p.replace(/; (using the default.*|ignored)$/, '')).join('; ')
  r.errors.push(`${invalid}: no Redis is used until this is fixed`)
  return { ...s, invalid }
}

function redisSettings(r: SettingsReader, sec: Section): RedisSettings {
  const d = REDIS_DEFAULTS
  return {
    url: r.str(sec, 'redis', 'url', d.url, (s) => (/^rediss?:\/\/[^\s]+$/.test(s) && URL.canParse(s) ? null : 'expected a redis:// or rediss:// URL')),
    cluster: hostPorts(r, sec, 'cluster'),
    sentinels: hostPorts(r, sec, 'sentinels'),
    sentinelName: r.str(sec, 'redis', 'sentinel_name', d.sentinelName, (v) => (/^[\x21-\x7e]{1,100}$/.test(v) ? null : 'expected a master name')),
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

function hostPorts(r: SettingsReader, sec: Section, key: string): string[] {
  r.key('redis', key)
  const raw = sec?.[key]
  const out: string[] = []
  for (const n of typeof raw === 'string' ? raw.split(/[\s,]+/).filter(Boolean) : []) {
    if (/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(n)) out.push(n)
    else r.errors.push(`${r.file} [redis] ${key}: "${n}" is not host:port; ignored`)
  }
  return out
}

function hostPort(n: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(n)!
  return { host: m[1], port: Number(m[2]) }
}

/** A single Redis or a Redis Cluster client; both answer the commands the suite uses. */
export type RedisClient = Redis | Cluster

/** Where we connect, for logs: never the password. */
export function describeRedis(s: RedisSettings): string {
  if (s.cluster.length) return `redis cluster ${s.cluster.join(',')}`
  if (s.sentinels.length) return `redis master "${s.sentinelName}" via sentinels ${s.sentinels.join(',')}`
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
  // Sentinel: ask the sentinels where the master is, again after every failover.
  if (s.sentinels.length) return new Redis({ ...opts, sentinels: s.sentinels.map(hostPort), name: s.sentinelName, db: s.db })
  return new Redis({ ...opts, host: s.host, port: s.port, db: s.db })
}

/** Like createRedis, but a Redis Cluster client when `cluster` seed nodes are configured. */
export function createRedisClient(s: RedisSettings, extra: RedisOptions = {}): RedisClient {
  if (s.cluster.length === 0) return createRedis(s, extra)
  const nodes = s.cluster.map(hostPort)
  const { enableOfflineQueue, retryStrategy, lazyConnect, ...rest } = { ...extra }
  const redisOptions: RedisOptions = { connectTimeout: s.connectTimeoutMs, commandTimeout: s.timeoutMs, maxRetriesPerRequest: 1, ...rest }
  if (s.username) redisOptions.username = s.username
  if (s.password) redisOptions.password = s.password
  if (s.tls) redisOptions.tls = s.tlsCa ? { ca: fs.readFileSync(s.tlsCa) } : {}
  return new Cluster(nodes, {
    redisOptions,
    enableOfflineQueue: enableOfflineQueue ?? false,
    lazyConnect: lazyConnect ?? false,
    clusterRetryStrategy: retryStrategy ? () => retryStrategy(1) ?? null : (times) => Math.min(100 * times, 2000),
  })
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster
}

/** One command; scripts defined with defineCommand are methods (EVALSHA, loaded on demand), not call() names. */
function send(client: RedisClient, c: string, args: Array<string | number>): Promise<unknown> {
  return c in client.scriptsSet ? (client as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[c](...args) : client.call(c, ...args)
}

/** call() returns raw replies: give HGETALL the object shape a pipeline gives it. */
function shape(c: string, v: unknown): unknown {
  if (c.toLowerCase() !== 'hgetall' || !Array.isArray(v)) return v
  const o: Record<string, unknown> = {}
  for (let i = 0; i + 1 < v.length; i += 2) o[String(v[i])] = v[i + 1]
  return o
}

/**
 * Several commands in one round trip: one pipeline on a single Redis; on a Cluster
 * each command goes to the node that owns its key, all at once (keys of one
 * decision live in different hash slots, and a cluster pipeline may not mix them).
 * A single command is sent as it is (the same round trip; an ioredis pipeline
 * costs the client more CPU than the command itself).
 * Results in exec()'s shape: [error, value] per command.
 */
export async function batch(client: RedisClient, cmds: Array<[string, ...Array<string | number>]>): Promise<Array<[Error | null, unknown]>> {
  if (client instanceof Cluster || cmds.length === 1) {
    return Promise.all(cmds.map(([c, ...args]) => send(client, c, args).then((v): [Error | null, unknown] => [null, shape(c, v)], (e: Error): [Error | null, unknown] => [e, null])))
  }
  return ((await client.pipeline(cmds).exec()) ?? []) as Array<[Error | null, unknown]>
}

/**
 * A client whose trouble is logged as an outage: once when it starts (ioredis repeats the
 * same error on every reconnect attempt), a summary a minute, once when it ends.
 */
export function createLoggedRedis(s: RedisSettings, log: OutageLogger, effect: string, unit: string): { client: RedisClient; outage: OutageLog } {
  const client = createRedisClient(s)
  const outage = new OutageLog(`redis ${describeRedis(s)}`, effect, unit, log)
  let closing = false
  client.on('error', (err: Error) => outage.fail(err.message))
  client.on('close', () => closing || outage.fail('connection lost'))
  client.on('ready', () => outage.ok())
  const disconnect = client.disconnect.bind(client)
  client.disconnect = (reconnect?: boolean) => {
    closing = !reconnect
    outage.close()
    disconnect(reconnect)
  }
  return { client, outage }
}
