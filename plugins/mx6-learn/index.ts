// mx6-learn: keeps the lists mx6-receive reads up to date from real traffic.
//  - Address books: a local user's outbound mail adds its external recipients to
//    mx6:book:<user>, so their replies are accepted over IPv6 when authenticated.
//  - IPv4 history: inbound IPv4 mail with an authenticated From domain counts
//    in mx6:hist:<domain>, which mx6-receive's history signal reads.
// Learning happens only for mail actually queued (queue_ok), in one pipeline,
// and never delays or refuses mail: RedisClient trouble is logged and skipped.
import type { Connection, Next, PluginBase } from '../lib/haraka'
import { classifyPeer } from '../lib/ip'
import { Keys } from '../lib/keys'
import { RedisResource } from '../lib/lifecycle'
import { dnsOutageLog, type OutageLog } from '../lib/outage'
import { batch, createLoggedRedis, describeRedis, type RedisClient } from '../lib/redis'
import { configChanges, readSharedConfig, withSharedRedis } from '../lib/shared-config'
import { dkimPassDomains, fromFact, mailbox, spfFact } from '../mx6-receive/facts'
import { BOOLEANS, CONFIG_FILE, readLearnConfig, type LearnSettings } from './config'
import { bookLesson, dmarcMatters, historyLesson } from './learn'
import { CachingResolver, NodeDnsClient, systemServers } from '../lib/dns'
import { canonicalDomain } from '../lib/domain'
import { evaluateDmarc, type DmarcOutcome } from '../mx6-receive/dmarc'
import type { AuthFacts } from '../mx6-receive/decide-data'
import { envelopeFingerprint, messageIdFingerprint } from '../lib/followup'
import { markReturned } from '../lib/store'

interface Plugin extends PluginBase {
  cfg: LearnSettings
  hostList: Set<string>
  redis: RedisResource<{ client: RedisClient; outage: OutageLog }>
  /** For the From domain's DMARC record: the system's name servers, as Haraka's own lookups. */
  resolver: CachingResolver
  load_config(): void
}

/** DMARC lookups of the history step: a short timeout, as it only delays learning. */
const DMARC_TIMEOUT_MS = 2000

export function register(this: Plugin): void {
  this.redis = new RedisResource(
    () => createLoggedRedis(this.cfg.redis, { error: (m) => this.logwarn(m), info: (m) => this.loginfo(m) }, 'learning paused, mail is not affected,', 'messages not learned from'),
    (r) => r.client.disconnect(),
    () => !this.cfg.redis.invalid,
  )
  const servers = systemServers()
  const health = dnsOutageLog(servers, 'DMARC of IPv4 mail is not evaluated (no history learned from a From domain with a record)', this)
  this.resolver = new CachingResolver(new NodeDnsClient(servers, DMARC_TIMEOUT_MS, 300), { negativeTtl: 300, maxTtl: 3600, health })
  this.load_config()
  this.register_hook('queue_ok', 'mx6_learn')
}

export function load_config(this: Plugin): void {
  const reload = () => this.load_config()
  const own = this.config.get(CONFIG_FILE, { booleans: BOOLEANS }, reload) as Record<string, Record<string, unknown>>
  const { ini, source, redisFile } = withSharedRedis(own, readSharedConfig(this.config, 'mx6-learn', reload), CONFIG_FILE)
  const { config, errors, unknown } = readLearnConfig(ini, redisFile)
  for (const e of errors) this.logerror(e)
  for (const u of unknown) this.logwarn(u)
  if (this.cfg) this.loginfo(`configuration reloaded: ${configChanges(this.cfg, config).join('; ') || 'nothing changed'}`)
  else this.loginfo(`redis ${describeRedis(config.redis)} (settings: ${source})`)
  this.cfg = config
  const hosts = config.localDomains.length ? config.localDomains : ((this.config.get('host_list', 'list', () => this.load_config()) as string[]) ?? [])
  this.hostList = new Set(hosts.map((h) => h.toLowerCase()))
  this.redis.configure([config.redis, source])
}

// Connect at start-up, close on shutdown (one lifecycle for the three plugins).
export { hook_init_master, hook_init_child, shutdown } from '../lib/lifecycle'


/** Our own domain (or a subdomain of one)? */
function isLocal(plugin: Plugin, domain: string): boolean {
  for (let d = domain; d.includes('.'); d = d.slice(d.indexOf('.') + 1)) if (plugin.hostList.has(d)) return true
  return false
}

export function mx6_learn(this: Plugin, next: Next, connection: Connection): void {
  // queue_ok: the mail is safely queued. Everything is read from the transaction
  // before next(): Haraka then answers 250 and resets the transaction.
  try {
    learn(this, connection)
  } finally {
    next()
  }
}

function learn(plugin: Plugin, connection: Connection): void {
  const txn = connection.transaction
  if (!txn) return
  const keys = new Keys(plugin.cfg.redis.prefix)
  if (plugin.cfg.redis.invalid) return
  const { client: c, outage } = plugin.redis.get()
  if (c.status !== 'ready') {
    // Counted in the outage's summary: one log line a minute, not one a message.
    outage.hit()
    connection.logdebug(plugin, `redis not connected (${c.status}): nothing learned from this message`)
    return
  }
  const now = Math.floor(Date.now() / 1000)
  // The whole lesson in one round trip (see batch()).
  const p: Array<[string, ...Array<string | number>]> = []
  const notes: string[] = []
  let book: { owner: string; members: string[] } | null = null

  const local = connection.relaying || !!connection.notes.auth_user
  if (local && plugin.cfg.books.enabled) {
    const lesson = bookLesson(
      mailbox(txn.mail_from, plugin.cfg.recipientDelimiter),
      txn.rcpt_to.map((r) => mailbox(r)),
      (d) => isLocal(plugin, d),
    )
    if (lesson) {
      book = lesson
      const seen = keys.bookSeen(lesson.owner)
      const ttl = plugin.cfg.books.maxAgeDays * 86400
      // Entries not written to for max_age_days age out (learned ones only; the
      // ZRANGEBYSCORE answer is trimmed below), and a book never grows past max_entries.
      p.push(['zrangebyscore', seen, '-inf', now - ttl], ['zcard', seen], ['sadd', keys.book(lesson.owner), ...lesson.members])
      p.push(['zadd', seen, ...lesson.members.flatMap((m) => [now, m])], ['expire', seen, ttl])
      notes.push(`book of ${lesson.owner} += ${lesson.members.join(', ')}`)
    }
  }

  const peer = classifyPeer(connection.remote.ip)
  // IPv4 history: the facts are read now; the From domain's DMARC may need a DNS lookup,
  // so the history commands go last in the pipeline, once it has answered.
  const history = !local && peer?.family === 'ipv4' && plugin.cfg.history.enabled ? { spf: spfFact(txn), dkimPass: dkimPassDomains(txn), from: fromFact(txn) } : null
  // Follow-up: did this IPv4 message come back after a deferral over IPv6? Read in
  // the same pipeline (one round trip); the match is written afterwards, off the path.
  let followup: { start: number; mid: string | null; envs: string[] } | null = null
  if (!local && peer?.family === 'ipv4' && plugin.cfg.followup) {
    const mailFrom = mailbox(txn.mail_from)?.address ?? ''
    const rcpts = txn.rcpt_to.map((r) => `${r.user}@${r.host}`)
    const envs = [...new Set([envelopeFingerprint(mailFrom, rcpts, plugin.cfg.recipientDelimiter), ...rcpts.slice(0, 20).map((r) => envelopeFingerprint(mailFrom, [r], plugin.cfg.recipientDelimiter))])]
    const mid = messageIdFingerprint(txn.header.get_all('Message-ID')[0])
    followup = { start: p.length, mid, envs }
    if (mid) p.push(['get', keys.attemptByMessageId(mid)])
    for (const e of envs) p.push(['hmget', keys.attempt(e), 'time', 'returned'])
  }
  if (notes.length === 0 && !followup && !history) return
  const from = connection.remote.ip

  historyDmarc(plugin, history)
    .then((dmarc) => {
      const lesson = history && historyLesson({ ...history, dmarc }, plugin.cfg.history.alignment)
      if (lesson) {
        const key = keys.history(lesson.domain)
        p.push(['hincrby', key, 'count', 1], ['hsetnx', key, 'first', now], ['hset', key, 'last', now], ['expire', key, plugin.cfg.history.ttlDays * 86400])
        notes.push(`IPv4 history of ${lesson.domain} (${lesson.reason})`)
      } else if (history && dmarc && (dmarc.result === 'fail' || dmarc.result === 'temperror')) {
        connection.loginfo(plugin, `no IPv4 history learned: ${dmarc.authResults}`)
      }
      return notes.length || followup ? batch(c, p) : null
    })
    .then((results) => {
      if (!results) return
      if (notes.length) connection.loginfo(plugin, `learned: ${notes.join('; ')}`)
      if (followup && results) matchReturn(plugin, c, keys, connection, followup, results.slice(followup.start), now, from)
      if (!book || !results) return
      const stale = (results[0]?.[1] as string[] | undefined) ?? []
      const size = Number(results[1]?.[1] ?? 0) + book.members.length
      trimBook(plugin, c, keys, book.owner, stale, size)
    })
    .catch((err: Error) => connection.logwarn(plugin, `nothing learned: ${err.message}`))
}

/** The From domain's DMARC for the history step; undefined when off or unable to change the lesson. */
async function historyDmarc(plugin: Plugin, f: Pick<AuthFacts, 'spf' | 'dkimPass' | 'from'> | null): Promise<DmarcOutcome | undefined> {
  if (!f || !plugin.cfg.history.dmarc || !dmarcMatters(f) || !('mailbox' in f.from)) return undefined
  const spfPassDomain = f.spf?.result === 'pass' ? canonicalDomain(f.spf.domain) : null
  return evaluateDmarc({ fromDomain: f.from.mailbox.domain, spfPassDomain, dkimPassDomains: f.dkimPass }, plugin.resolver, DMARC_TIMEOUT_MS)
}

/** Marks the deferred attempt this IPv4 message matches (Message-ID first, else envelope) as returned. */
function matchReturn(plugin: Plugin, c: RedisClient, keys: Keys, connection: Connection, f: { mid: string | null; envs: string[] }, results: Array<[Error | null, unknown]>, now: number, from: string): void {
  let i = 0
  const pointer = f.mid ? (results[i++]?.[1] as string | null) : null
  const states = f.envs.map((e) => ({ env: e, state: results[i++]?.[1] as Array<string | null> | undefined }))
  const open = (s: Array<string | null> | undefined) => !!s && s[0] !== null && s[1] === null
  const byEnvelope = states.find((s) => open(s.state))
  const work = async (): Promise<void> => {
    let env: string | null = null
    let first = NaN
    if (pointer) {
      const [time, returned] = (await c.hmget(keys.attempt(pointer), 'time', 'returned')) as Array<string | null>
      if (time !== null && returned === null) {
        env = pointer
        first = Number(time)
      }
    }
    if (!env && byEnvelope?.state) {
      env = byEnvelope.env
      first = Number(byEnvelope.state[0])
    }
    if (!env) return
    // Gone since it was read (expired, or trimmed by a later deferral): nothing to mark.
    if (!(await markReturned(c, keys.attempt(env), now, from))) return
    connection.loginfo(plugin, `follow-up: deferred over IPv6 ${Math.max(0, now - first)} s ago, came back over IPv4 from ${from} (matched by ${env === pointer ? 'Message-ID' : 'envelope'})`)
  }
  work().catch((err: Error) => connection.logwarn(plugin, `follow-up not recorded: ${err.message}`))
}

/** Removes aged-out learned entries, and the oldest ones past max_entries, off the hot path. */
function trimBook(plugin: Plugin, c: RedisClient, keys: Keys, owner: string, stale: string[], size: number): void {
  const seen = keys.bookSeen(owner)
  const over = size - plugin.cfg.books.maxEntries
  const work = async (): Promise<void> => {
    const victims = [...stale]
    if (over > 0) victims.push(...(await c.zrange(seen, '0', String(over - 1))))
    if (victims.length === 0) return
    await batch(c, [['srem', keys.book(owner), ...victims], ['zrem', seen, ...victims]])
    plugin.loginfo(`book of ${owner}: ${victims.length} learned entries aged out or over max_entries`)
  }
  work().catch((err: Error) => plugin.logwarn(`book of ${owner} not trimmed: ${err.message}`))
}
