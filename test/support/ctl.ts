// Running mx6ctl in-process against a private redis-server, for functional tests.
import { main } from '../../scripts/mx6ctl'
import { RedisServer } from './redis'

export interface Run {
  code: number
  out: string
  err: string
}

/** One mx6ctl call with a capturing Io. */
export async function ctl(...argv: string[]): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, { out: (t) => void out.push(t), err: (t) => void err.push(t) })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

/**
 * A private redis-server for the describe block, with MX6_REDIS_URL pointing at it
 * (and MX6_CONFIG unset) while it runs; the environment is restored afterwards.
 */
export function useCtlRedis(): { server: RedisServer } {
  const ctx = {} as { server: RedisServer }
  const saved = { url: process.env.MX6_REDIS_URL, config: process.env.MX6_CONFIG }
  before(async () => {
    ctx.server = await RedisServer.start()
    process.env.MX6_REDIS_URL = ctx.server.url
    delete process.env.MX6_CONFIG
  })
  after(async () => {
    if (saved.url === undefined) delete process.env.MX6_REDIS_URL
    else process.env.MX6_REDIS_URL = saved.url
    if (saved.config !== undefined) process.env.MX6_CONFIG = saved.config
    await ctx.server?.stop()
  })
  return ctx
}
