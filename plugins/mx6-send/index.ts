// mx6-send: the sending half of MX6 for Haraka's outbound delivery.
//
// get_mx: look up _mx6._tcp.<domain> SRV first; deliver over IPv6 only to the
// hosts named there, then to the regular MX over IPv4 only. When an MX6 host
// answers the fallback reply, the message is not bounced: the same queued
// message goes on at once to the regular MX over IPv4.
//
// Why no second queue copy: the bounce (or deferred) hook keeps the original
// queue file alive (refcount) and restarts its MX selection in IPv4-only mode.
// The file is removed by Haraka only after the IPv4 delivery succeeded, so a
// crash at any point leaves the message queued: at worst it is delivered twice
// (if the crash falls between the IPv4 server's 250 and the unlink), never lost.
import constants from 'haraka-constants'
import type { Next, PluginBase } from '../lib/haraka'
import { Keys } from '../lib/keys'
import { RedisResource } from '../lib/lifecycle'
import { dnsOutageLog, type OutageLog } from '../lib/outage'
import { createLoggedRedis, describeRedis, type RedisClient } from '../lib/redis'
import { configChanges, readSharedConfig, withSharedRedis } from '../lib/shared-config'
import { isFallbackReply } from './classify'
import { BOOLEANS, CONFIG_FILE, readSendConfig, type Ini, type SendConfig } from './config'
import { CachingResolver, Dns2Client, systemServers } from '../lib/dns'
import { buildPlan } from './plan'
import { gatherPlanInput } from './resolve'

/** What mx6-send uses of Haraka's outbound HMailItem (Haraka 3.3.x). */
interface Rcpt {
  original?: string
  user?: string
  host?: string
  dsn_smtp_code?: string
  dsn_smtp_extc?: string
  dsn_smtp_response?: string
  dsn_remote_mta?: string
}

interface HMail {
  refcount: number
  filename: string
  todo: { domain: string; uuid: string; mail_from?: { user?: string; host?: string }; rcpt_to: Rcpt[] }
  get_mx(): void
  logdebug(msg: string): void
  loginfo(msg: string): void
  lognotice(msg: string): void
  logwarn(msg: string): void
  logerror(msg: string): void
}

interface Plugin extends PluginBase {
  cfg: SendConfig
  resolver: CachingResolver
  /** The name servers' outage log (lookups without any answer). */
  dnsOutage?: OutageLog
  redis: RedisResource<{ client: RedisClient; outage: OutageLog }>
  /** Messages already pushed back to IPv4 by a fallback reply (kept across in-process retries). */
  v4only: WeakSet<object>
  /** MX6 addresses ("[ip]:port") last planned per domain, to recognise them in bounces. */
  mx6Hosts: Map<string, Set<string>>
  load_config(): void
}

export function register(this: Plugin): void {
  this.v4only = new WeakSet()
  this.mx6Hosts = new Map()
  this.redis = new RedisResource(
    () => createLoggedRedis(this.cfg.redis, { error: (m) => this.logwarn(m), info: (m) => this.loginfo(m) }, 'the fallback log is paused, delivery is not affected,', 'fallbacks not logged'),
    (r) => r.client.disconnect(),
    () => this.cfg.fallback.logSize > 0 && !this.cfg.redis.invalid,
  )
  this.load_config()
  this.register_hook('get_mx', 'mx6_get_mx')
  this.register_hook('bounce', 'mx6_bounce')
  this.register_hook('deferred', 'mx6_deferred')
  const outbound = this.config.get('outbound.ini', {}) as { main?: { inet_prefer?: string } }
  const prefer = outbound?.main?.inet_prefer
  if (prefer === 'v4' || prefer === 'v6') {
    this.logwarn(`outbound.ini inet_prefer=${prefer} reorders the MX list by address family; mx6-send needs inet_prefer=default`)
  }
}

export function load_config(this: Plugin): void {
  const reload = () => this.load_config()
  const own = this.config.get(CONFIG_FILE, { booleans: BOOLEANS }, reload) as Ini
  const { ini, source, redisFile } = withSharedRedis(own, readSharedConfig(this.config, 'mx6-send', reload), CONFIG_FILE)
  const { config, errors, unknown } = readSendConfig(ini, redisFile)
  for (const e of errors) this.logerror(e)
  for (const u of unknown) this.logwarn(u)
  if (this.cfg) this.loginfo(`configuration reloaded: ${configChanges(this.cfg, config).join('; ') || 'nothing changed'}`)
  else this.loginfo(`redis ${describeRedis(config.redis)} for the fallback log (settings: ${source})`)
  this.cfg = config
  const servers = config.dns.servers.length ? config.dns.servers : systemServers()
  this.dnsOutage = dnsOutageLog(servers, 'deliveries whose MX6 lookups fail are deferred', this, this.dnsOutage)
  this.resolver = new CachingResolver(new Dns2Client(servers, config.dns.timeoutMs), { negativeTtl: config.dns.negativeTtl, maxTtl: config.dns.maxTtl, health: this.dnsOutage })
  this.redis.configure([config.redis, source])
}

/** The fallback log's client; null when the log is off. */
function redis(plugin: Plugin): RedisClient | null {
  return plugin.cfg.fallback.logSize === 0 || plugin.cfg.redis.invalid ? null : plugin.redis.get().client
}

// Connect at start-up, close on shutdown (one lifecycle for the three plugins).
export { hook_init_master, hook_init_child, shutdown } from '../lib/lifecycle'

/** Waits (bounded) for the connection, which fails fast while it is not ready. */
function ready(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      reject(new Error(`redis not ready after ${ms} ms (${client.status})`))
    }, ms)
    const onReady = (): void => {
      clearTimeout(timer)
      resolve()
    }
    client.once('ready', onReady)
  })
}


export function mx6_get_mx(this: Plugin, next: Next, hmail: HMail, domain: string): void {
  const v4only = this.v4only.has(hmail)
  gatherPlanInput(domain, v4only, this.resolver, this.cfg.plan)
    .then((input) => {
      const plan = buildPlan(input, this.cfg.plan)
      for (const n of plan.notes) hmail.loginfo(`[mx6-send] ${domain}: ${n}`)
      if ('defer' in plan) {
        // While the name servers are out, the outage log speaks for every such deferral.
        if (this.dnsOutage?.down) hmail.logdebug(`[mx6-send] ${domain}: ${plan.defer}; deferred`)
        else hmail.logwarn(`[mx6-send] ${domain}: ${plan.defer}; deferred`)
        return next(constants.denysoft, plan.defer)
      }
      if ('bounce' in plan) {
        // Haraka's own null-MX handling writes the RFC 7505 DSN.
        if (plan.nullMx) return next(constants.ok, [{ priority: 0, exchange: '' }])
        return next(constants.deny, plan.bounce)
      }
      this.mx6Hosts.set(domain, new Set(plan.deliver.filter((e) => e.mx6).map((e) => `[${e.exchange}]:${e.port}`)))
      const list = plan.deliver.map((e) => {
        const bind = e.exchange.includes(':') ? this.cfg.bindIpv6 : this.cfg.bindIpv4
        return { exchange: e.exchange, port: e.port, priority: e.priority, from_dns: e.from_dns, ...(bind ? { bind } : {}) }
      })
      hmail.loginfo(`[mx6-send] ${domain}: ${plan.deliver.map((e) => `${e.mx6 ? 'mx6 ' : ''}${e.from_dns}[${e.exchange}]:${e.port}`).join(', ')}`)
      next(constants.ok, list)
    })
    .catch((err: Error) => {
      hmail.logerror(`[mx6-send] ${domain}: ${err.stack ?? err.message}; deferred`)
      next(constants.denysoft, `mx6-send: ${err.message}`)
    })
}

function wasMx6Host(plugin: Plugin, domain: string, ip: string | undefined, port?: number): boolean {
  const hosts = plugin.mx6Hosts.get(domain)
  if (!hosts || !ip) return false
  if (port !== undefined) return hosts.has(`[${ip}]:${port}`)
  return [...hosts].some((h) => h.startsWith(`[${ip}]:`))
}

/**
 * Hands the message back to MX selection in IPv4-only mode. The extra refcount
 * keeps Haraka from deleting the queue file when the hook answers OK (which
 * suppresses the bounce or the deferral); the delivery over IPv4 releases it.
 */
function fallBack(plugin: Plugin, next: Next, hmail: HMail, rcpts: Rcpt[], host: string, code: string): void {
  const reply = rcpts[0]?.dsn_smtp_response ?? ''
  hmail.lognotice(`[mx6-send] MX6 fallback from ${host} for ${hmail.todo.domain}: ${code} ${reply}; delivering over IPv4 to the regular MX now`)
  recordFallback(plugin, hmail, rcpts, host, code, reply)
  plugin.v4only.add(hmail)
  hmail.refcount++
  next(constants.ok)
  setImmediate(() => hmail.get_mx())
}

function recordFallback(plugin: Plugin, hmail: HMail, rcpts: Rcpt[], host: string, code: string, reply: string): void {
  const client = redis(plugin)
  if (!client) return
  const key = new Keys(plugin.cfg.redis.prefix).fallbackLog
  const from = hmail.todo.mail_from
  const entry = {
    time: new Date().toISOString(),
    domain: hmail.todo.domain,
    host,
    code,
    status: rcpts[0]?.dsn_smtp_extc ?? '',
    reply,
    recipients: rcpts.map((r) => r.original ?? `${r.user}@${r.host}`),
    mail_from: from?.user ? `${from.user}@${from.host}` : '<>',
    queue_id: hmail.todo.uuid,
  }
  ready(client, plugin.cfg.redis.connectTimeoutMs)
    .then(() => client.multi().lpush(key, JSON.stringify(entry)).ltrim(key, 0, plugin.cfg.fallback.logSize - 1).exec())
    .catch((err: Error) => hmail.logwarn(`[mx6-send] fallback log not written: ${err.message}`))
}

export function mx6_bounce(this: Plugin, next: Next, hmail: HMail, err: { mx?: { exchange?: string; port?: number; from_dns?: string }; bounced_rcpt?: Rcpt[] }): void {
  const mx = err?.mx
  if (!hmail?.todo || !mx || !wasMx6Host(this, hmail.todo.domain, mx.exchange, mx.port)) return next()
  const rcpts = err.bounced_rcpt?.length ? err.bounced_rcpt : hmail.todo.rcpt_to
  // Only the fallback reply falls back: any other 5xx from an MX6 host is a real rejection.
  if (!rcpts.every((r) => isFallbackReply(r.dsn_smtp_code, r.dsn_smtp_extc, this.cfg.fallback))) return next()
  fallBack(this, next, hmail, rcpts, `${mx.from_dns ?? '?'}[${mx.exchange}]`, rcpts[0].dsn_smtp_code ?? '')
}

export function mx6_deferred(this: Plugin, next: Next, hmail: HMail, params: { fail_recips?: Rcpt[] }): void {
  if (!hmail?.todo) return next()
  const rcpts = params?.fail_recips?.length ? params.fail_recips : hmail.todo.rcpt_to
  const first = rcpts[0]
  // A 4xx fallback code (the draft's 456) arrives as a temporary failure, with the MX only in the DSN fields.
  if (!first || !wasMx6Host(this, hmail.todo.domain, first.dsn_remote_mta)) return next()
  if (!rcpts.every((r) => isFallbackReply(r.dsn_smtp_code, r.dsn_smtp_extc, this.cfg.fallback))) return next()
  fallBack(this, next, hmail, rcpts, `[${first.dsn_remote_mta}]`, first.dsn_smtp_code ?? '')
}
