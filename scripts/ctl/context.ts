// Where mx6ctl finds Redis: the same settings as the plugins, read from the
// Haraka instance given with --config (or MX6_CONFIG), MX6_REDIS_URL overriding.
import fs from 'node:fs'
import path from 'node:path'
import { Keys } from '../../plugins/lib/keys'
import type { Redis } from 'ioredis'
import { createRedisClient, describeRedis, type RedisClient, type RedisSettings } from '../../plugins/lib/redis'
import { SHARED_CONFIG, withSharedRedis } from '../../plugins/lib/shared-config'
import { readReceiveConfig, type ReceiveConfig } from '../../plugins/mx6-receive/config'
import { CtlError, UsageError, type GlobalOptions, type Io } from './command'

// haraka-config has no types; only module_config().get() is used.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const harakaConfig = require('haraka-config') as { module_config(root: string): { get(file: string, opts?: unknown): unknown } }

/**
 * Operator commands may move more data than one SMTP lookup (a big import, a
 * lint of a long list): their per-command bound, instead of the lookup timeout.
 */
export const OPERATOR_TIMEOUT_MS = 30_000

export interface Context {
  redis: RedisClient
  keys: Keys
  settings: RedisSettings
  receive: ReceiveConfig
  close(): Promise<void>
}

/** The instance root (the directory holding config/), from the instance or its config/ directory; a wrong one is a usage error. */
export function configRoot(dir: string): string {
  const abs = path.resolve(dir)
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new UsageError(`--config ${dir}: no such directory`, true)
  if (fs.existsSync(path.join(abs, 'config'))) return abs
  if (path.basename(abs) === 'config') return path.dirname(abs)
  throw new UsageError(`--config ${dir}: neither a Haraka instance (with config/) nor its config/ directory`, true)
}

/** The mx6-receive settings mx6ctl uses: the instance's file, or the defaults. */
export function loadReceiveConfig(global: GlobalOptions, io: Io): ReceiveConfig {
  const dir = global.config ?? process.env.MX6_CONFIG
  const cfg = dir ? harakaConfig.module_config(configRoot(dir)) : null
  const read = (file: string) => (cfg ? (cfg.get(file, { booleans: [] }) as Record<string, Record<string, unknown>>) : {})
  // The plugins' Redis setting: mx6.ini [redis], mx6-receive.ini's own [redis] overriding it.
  const { ini, redisFile } = withSharedRedis(read('mx6-receive.ini'), read(SHARED_CONFIG), 'mx6-receive.ini')
  const { config, errors } = readReceiveConfig(ini, redisFile)
  // Unusable Redis settings are the command's one error line (openContext), not a warning too.
  for (const e of errors) if (!(config.redis.invalid && e.endsWith('no Redis is used until this is fixed'))) io.err(`warning: ${e}`)
  if (process.env.MX6_REDIS_URL) config.redis = { ...config.redis, url: process.env.MX6_REDIS_URL }
  return config
}

/** Connects (bounded by connect_timeout); a failure is one clear line and exit status 1. */
export async function openContext(global: GlobalOptions, io: Io, receive = loadReceiveConfig(global, io)): Promise<Context> {
  const settings = receive.redis
  if (settings.invalid) throw new CtlError(`redis settings invalid (${settings.invalid}); nothing done`)
  // An operator command may scan or import a lot: the plugins' 500 ms lookup bound is for SMTP.
  const redis = createRedisClient(settings, { lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: true, commandTimeout: OPERATOR_TIMEOUT_MS })
  let cause = ''
  redis.on('error', (err: Error) => {
    // The socket error (ECONNREFUSED, ...) says more than connect()'s "Connection is closed".
    cause ||= err.message
  })
  try {
    await redis.connect()
  } catch (err) {
    redis.disconnect()
    throw new CtlError(`cannot connect to redis ${describeRedis(settings)}: ${cause || (err as Error).message}`)
  }
  // ioredis reports a refused SELECT and goes on in database 0: ask again, and stop if refused.
  if (settings.db > 0 && !settings.cluster.length) {
    try {
      await (redis as Redis).select(settings.db)
    } catch (err) {
      redis.disconnect()
      throw new CtlError(`redis ${describeRedis(settings)}: database ${settings.db} refused (${(err as Error).message}); nothing done`)
    }
  }
  return { redis, keys: new Keys(settings.prefix), settings, receive, close: async () => void redis.disconnect() }
}
