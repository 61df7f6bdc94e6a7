// The usual e2e fixture: a private Redis and a Haraka with the suite pointed at it,
// started before a describe block and stopped after it (log dumped on failure).
import { HarakaServer } from './haraka'
import { requireTestbed } from './net'
import { RedisServer } from './redis'

export const V6MX = '2001:db8:25::25'
export const MX6 = '2001:db8:25::6'
export const V4MX = '198.51.100.25'
export const RECEIVER_PLUGINS = ['spf', 'dkim', 'mx6-receive', 'rcpt_to.in_host_list', 'queue-capture']

export interface ReceiverOptions {
  listen: string[]
  plugins?: string[]
  /** mx6-receive.ini without the [redis] section, which points at the private Redis. */
  ini?: string
  /** Extra config files for Haraka; a function is called at start-up (e.g. for ports known only then). */
  config?: Record<string, string> | (() => Record<string, string>)
  hostList?: string[]
  /** Extra test plugins (name -> JS source), e.g. to slow a hook down. */
  pluginFiles?: Record<string, string>
}

export interface Receiver {
  redis: RedisServer
  haraka: HarakaServer
}

/** Registers mocha hooks; the returned object is filled in by before(). */
export function useReceiver(opts: ReceiverOptions): Receiver {
  const ctx = {} as Receiver
  before(async function () {
    this.timeout(30000)
    requireTestbed()
    ctx.redis = await RedisServer.start()
    ctx.haraka = await HarakaServer.start({
      listen: opts.listen,
      // Test plugins go first, so they see every hook before the suite answers.
      plugins: [...Object.keys(opts.pluginFiles ?? {}), ...(opts.plugins ?? RECEIVER_PLUGINS)],
      hostList: opts.hostList,
      pluginFiles: opts.pluginFiles,
      config: { ...(typeof opts.config === 'function' ? opts.config() : opts.config), 'mx6-receive.ini': `${opts.ini ?? ''}\n[redis]\nport=${ctx.redis.port}\ntimeout=300\n` },
    })
  })
  after(async () => {
    await ctx.haraka?.stop()
    await ctx.redis?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ctx.haraka) console.log(ctx.haraka.log().slice(-6000))
  })
  return ctx
}
