// mx6-receive: accepts mail from IPv6 peers only when something good is known about it;
// everything else gets a 4xx so the sender retries at the IPv4 MX.
//
// Haraka glue only: the session (session.ts) decides, the hooks map its outcome to next().
// Haraka copies these named exports onto the plugin object (a default export registers nothing).
import { inspect } from 'node:util'
import constants from 'haraka-constants'
import type { Attempt } from '../lib/followup'
import type { Connection, HarakaAddress, Next, PluginBase, Transaction } from '../lib/haraka'
import type { CachingResolver } from '../lib/dns'
import { matchesListener } from '../lib/ip'
import { RedisResource } from '../lib/lifecycle'
import { configChanges, orderWarnings, readSharedConfig, withSharedRedis } from '../lib/shared-config'
import { rememberAttempt } from './attempt'
import { BOOLEANS, CONFIG_FILE, peerResolver, readReceiveConfig, resolverServers, type Ini, type ReceiveConfig } from './config'
import { screenPeer, type Decision } from './decide'
import { dkimFailDomains, dkimPassDomains, fromFact, mailbox, peerFacts, rcptId, spfFact } from './facts'
import { authText, counterName, decisionLine, deferReply, fallbackReply, resultsEntry } from './record'
import { Session, type Outcome } from './session'
import { messageArc, sources } from './sources'
import { connectionSignals, ipZones, lookupsAtConnect, signalsSource, type SignalsSource } from './signals'
import { zoneText, ZoneTroubleLog } from './reputation'
import { openStore, type StoreHandle } from './store-handle'
import { transactionState } from './state'
import { dnsOutageLog, type OutageLog } from '../lib/outage'

interface Plugin extends PluginBase {
  cfg: ReceiveConfig
  resolver: CachingResolver
  /** The name servers' outage log (lookups without any answer). */
  dnsOutage?: OutageLog
  signals: SignalsSource | null
  /** Provider zones' trouble, logged once per zone per interval (kept across reloads). */
  zoneTrouble?: ZoneTroubleLog
  redis: RedisResource<StoreHandle>
  /** Where the Redis settings in force come from (mx6.ini, this plugin's own [redis]). */
  redisSource: string
  load_config(): void
}

export function register(this: Plugin): void {
  this.redis = new RedisResource(
    () => openStore(this.cfg, this, this.redisSource),
    (h) => h.close(),
  )
  this.load_config()
  for (const w of orderWarnings((this.config.get('plugins', 'list') as string[]) ?? [], this.cfg.policy.undecided)) this.logwarn(`config/plugins: ${w}`)
  // Connect-time DNS lookups (see mx6_connect), when the settings at start-up want them (a
  // reload that adds the first provider zone starts them at RCPT until Haraka restarts).
  if (lookupsAtConnect(this.cfg)) this.register_hook('connect', 'mx6_connect')
  this.register_hook('rcpt', 'mx6_rcpt')
  this.register_hook('data_post', 'mx6_data_post')
}

export function load_config(this: Plugin): void {
  const reload = () => this.load_config()
  const own = this.config.get(CONFIG_FILE, { booleans: BOOLEANS }, reload) as Ini
  const { ini, source, redisFile } = withSharedRedis(own, readSharedConfig(this.config, 'mx6-receive', reload), CONFIG_FILE)
  const { config, errors, unknown } = readReceiveConfig(ini, redisFile)
  for (const e of errors) this.logerror(e)
  for (const u of unknown) this.logwarn(u)
  if (this.cfg) this.loginfo(`configuration reloaded: ${configChanges(this.cfg, config).join('; ') || 'nothing changed'}`)
  this.cfg = config
  this.redisSource = source
  this.dnsOutage = dnsOutageLog(resolverServers(config), 'peer DNS signals, DMARC and ARC count as absent (IPv6 mail without another basis is deferred)', this, this.dnsOutage)
  this.resolver = peerResolver(config, this.dnsOutage)
  this.signals = signalsSource(config, this.resolver)
  if (this.signals) this.signals.trouble = this.zoneTrouble ??= new ZoneTroubleLog((line) => this.logwarn(line))
  this.redis.configure([config.redis, source, config.statsDays, config.cache, config.followup.writeWindowMs, config.lintInterval])
}

// Connect at start-up, close on shutdown (one lifecycle for the three plugins).
export { hook_init_master, hook_init_child, shutdown } from '../lib/lifecycle'


/**
 * The peer's DNS lookups start as it connects when a decision will want them early: RCPT
 * waits for them (undecided=defer, not on an MX6 listener), or a provider zone is
 * configured. Never for IPv4, nor for a peer the list cache knows in ip:allow or ip:green
 * (the operator's own lists decide it; nothing is asked of anyone).
 */
export function mx6_connect(this: Plugin, next: Next, connection: Connection): void {
  const cfg = this.cfg
  const screen = lookupsAtConnect(cfg) ? screenPeer(peerFacts(connection), cfg.policy) : null
  if (screen && 'ipv6' in screen && (ipZones(cfg).length > 0 || !isMx6Session(this, connection)) && !listedPeer(this, screen.ipv6)) {
    void connectionSignals(this.signals, connection, screen.ipv6, (e) => connection.results.add(this, e))
  }
  next()
}

/** Whether the list cache knows the peer in ip:allow or ip:green (false when it does not know). */
function listedPeer(plugin: Plugin, ipv6: string): boolean {
  const known = plugin.redis.get().store.cache?.peer(ipv6, plugin.cfg.policy.green.ipGreen)
  return !!(known?.ipAllow || known?.ipGreen)
}

// Haraka lets a hook that throws continue to the next plugin, which may accept: anything
// thrown here answers as failed() does.
export function mx6_rcpt(this: Plugin, next: Next, connection: Connection, params: unknown[]): void {
  const txn = connection.transaction
  if (!txn) return next()
  const start = performance.now()
  try {
    const session = sessionOf(this, connection, txn)
    if (!session) return next()
    const addr = params[0] as HarakaAddress
    const rcpt = mailbox(addr, this.cfg.recipientDelimiter)
    session
      .rcpt(addr, rcptId(addr), rcpt)
      .then((o) => {
        record(this, connection, 'rcpt', o, start, ` <${rcpt?.address ?? '?'}>`)
        if (o.core.verdict === 'defer') remember(this, connection, txn, session, 'rcpt', o, [addr])
        if (o.decision.verdict === 'defer') return next(constants.denysoft, deferReply(this.cfg.defer, o.decision))
        next()
      })
      .catch(failed(this, 'rcpt', next, connection))
  } catch (err) {
    failed(this, 'rcpt', next, connection)(err as Error)
  }
}

export function mx6_data_post(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction
  if (!txn) return next()
  const start = performance.now()
  // Read at entry: whether data_post hooks (content filters) are still to run after this one.
  const filtersAfter = laterHooks(connection)
  try {
    const session = sessionOf(this, connection, txn)
    if (!session) return next()
    const delimiter = this.cfg.recipientDelimiter
    const recipients = txn.rcpt_to.map((r) => ({ key: r, id: rcptId(r), rcpt: mailbox(r, delimiter) }))
    session
      .data({ recipients, dkimPass: dkimPassDomains(txn), dkimFail: dkimFailDomains(txn), from: () => fromFact(txn), arc: (from) => messageArc(this, txn, from) })
      .then((o) => {
        // Haraka's Authentication-Results (the header, and the MX6 reply) carry DMARC too.
        if (o.dmarc) (connection as Connection & { auth_results(r: string): void }).auth_results(o.dmarc.authResults)
        record(this, connection, 'data_post', o, start)
        const d = o.decision
        if (!o.repeat && (o.core.verdict === 'defer' || o.core.verdict === 'fallback')) remember(this, connection, txn, session, 'data_post', o, txn.rcpt_to)
        if (d.verdict === 'fallback') {
          const reply = fallbackReply(this.cfg.mx6, (connection as Connection & { auth_results(): string }).auth_results(), connection.local.host ?? '')
          return next(Math.floor(this.cfg.mx6.code / 100) === 5 ? constants.deny : constants.denysoft, reply)
        }
        if (d.verdict === 'defer') return next(constants.denysoft, deferReply(this.cfg.defer, d))
        // OK ends data_post: spam filters listed after mx6-receive skip trusted mail (a malware
        // scanner listed before it has run). mode=observe skips nothing.
        if (d.verdict === 'trusted' && this.cfg.trustedSkipsFilters && filtersAfter && this.cfg.mode === 'enforce') return next(constants.ok)
        next()
      })
      .catch(failed(this, 'data_post', next, connection))
  } catch (err) {
    failed(this, 'data_post', next, connection)(err as Error)
  }
}

/** The transaction's session, made at its first hook; null for a peer left alone. */
function sessionOf(plugin: Plugin, connection: Connection, txn: Transaction): Session | null {
  const known = transactionState.get(txn)
  if (known !== undefined) return known
  const screen = screenPeer(peerFacts(connection), plugin.cfg.policy)
  if ('skip' in screen) {
    // IPv4, relaying, authenticated, private: one debug line per transaction, nothing else.
    connection.logdebug(plugin, new DebugLine('rcpt', screen.skip))
    transactionState.set(txn, null)
    return null
  }
  const envelope = { peer: peerFacts(connection), mx6: isMx6Session(plugin, connection), helo: connection.hello?.host ?? '', spf: spfFact(txn), mailFrom: mailbox(txn.mail_from) }
  const session = new Session(plugin.cfg, sources(plugin, connection), envelope)
  transactionState.set(txn, session)
  return session
}

/**
 * A decision's counter, and its log line at info with its results entry. A recipient left
 * pending at RCPT and a verdict repeated after DATA are logged at debug only.
 */
function record(plugin: Plugin, connection: Connection, phase: string, o: Outcome, start: number, subject?: string): void {
  const d = o.decision
  // Messages once (after DATA), recipients once when RCPT decides them for good: a recipient
  // left open at RCPT is counted with its message (mx6ctl stats never adds the two up).
  if (phase !== 'rcpt' || d.final) plugin.redis.peek()?.store.count([counterName(phase, d)])
  const ms = performance.now() - start
  if (o.repeat || d.verdict === 'pending') return connection.logdebug(plugin, new DebugLine(phase, d, subject, ms))
  const auth = authText(o)
  const line = decisionLine(phase, d, o.signals, subject, ms, auth)
  const zones = o.domainZones?.length ? { providers: o.domainZones.map((z) => `${z.subject}: ${zoneText(z)}`).join('; ') } : undefined
  const extra = auth || zones ? { ...o.extra, ...(auth ? { auth } : {}), ...zones } : o.extra
  connection.transaction?.results.add(plugin, resultsEntry(phase, d, line, extra))
  connection.loginfo(plugin, line)
}

/** A debug line made into text only when Haraka logs it (its logger inspects an object argument only at a level it logs). */
class DebugLine {
  constructor(
    private readonly phase: string,
    private readonly d: Decision,
    private readonly subject?: string,
    private readonly ms?: number,
  ) {}

  [inspect.custom](): string {
    return this.toString()
  }

  toString(): string {
    return decisionLine(this.phase, this.d, undefined, this.subject, this.ms)
  }
}

/** The follow-up record of a deferral the policy made (not one Redis trouble forced). */
function remember(plugin: Plugin, connection: Connection, txn: Transaction, session: Session, phase: 'rcpt' | 'data_post', o: Outcome, rcpts: HarakaAddress[]): void {
  const store = plugin.redis.peek()?.store
  if (!store || 'skip' in session.screen || (o.core.rule !== 'none' && o.core.rule !== 'auth-fail')) return
  const verdict = o.decision.verdict as Attempt['verdict']
  rememberAttempt(store, plugin.cfg, connection, txn, { ipv6: session.screen.ipv6, phase, verdict, reason: o.decision.reason, rcpts, domain: o.authDomain ?? '' })
}

/** A decision that went wrong: logged, and the deferral reply, never an accept (mode=observe: left alone). */
function failed(plugin: Plugin, phase: string, next: Next, connection: Connection): (err: Error) => void {
  return (err) => {
    const observing = plugin.cfg.mode === 'observe'
    connection.logerror(plugin, `${phase} decision failed${observing ? ' (mode=observe: would-defer, mail left alone)' : ''}: ${err.stack ?? err.message}`)
    if (observing) return next()
    next(constants.denysoft, deferReply(plugin.cfg.defer))
  }
}

function isMx6Session(plugin: Plugin, connection: Connection): boolean {
  return matchesListener(connection.local.ip, connection.local.port, plugin.cfg.mx6.listeners)
}

/** Whether plugins after this one still have the current hook to run; when Haraka does not say, assume they do. */
function laterHooks(connection: Connection): boolean {
  const rest = (connection as Connection & { hooks_to_run?: unknown[] }).hooks_to_run
  return !Array.isArray(rest) || rest.length > 0
}
