// mx6-receive: accepts mail from IPv6 peers only when something good is known
// about it; everything else gets a 4xx so the sender retries at the IPv4 MX.
//
// Haraka glue only: hooks gather facts, the pure core in decide.ts decides,
// and the verdict is mapped to next(). Haraka copies these named exports onto
// the plugin object (a default export would register nothing).
import constants from 'haraka-constants'
import DSN from 'haraka-dsn'
import type { Connection, Next, PluginBase, Transaction } from '../lib/haraka'
import { Keys } from '../lib/keys'
import { authResultsLines } from '../lib/authres'
import { matchesListener } from '../lib/ip'
import { lintHash } from '../lib/lint'
import { createRedis, describeRedis, type RedisSettings } from '../lib/redis'
import { replyLines } from '../lib/reply'
import { isEmptyRequest, RedisListStore, type ListStore, type LookupReply, type LookupRequest } from '../lib/store'
import { BOOLEANS, CONFIG_FILE, readReceiveConfig, type Ini, type ReceiveConfig } from './config'
import {
  decideData,
  decideRcpt,
  planData,
  planRcpt,
  screenPeer,
  type Decision,
  type Known,
  type RecipientState,
} from './decide'
import { dkimPassDomains, fromFact, mailbox, peerFacts, rcptId, spfFact } from './facts'

interface Plugin extends PluginBase {
  cfg: ReceiveConfig
  store: ListStore | null
  storeSettings: string
  lintTimer: NodeJS.Timeout | null
  reported: Set<string>
  load_config(): void
}

/** Per-transaction state, kept in txn.notes. */
interface TxnState {
  known: Known
  recipients: Map<string, RecipientState>
}

const NOTE = 'mx6_receive'

export function register(this: Plugin): void {
  this.store = null
  this.storeSettings = ''
  this.lintTimer = null
  this.reported = new Set()
  this.load_config()
  this.register_hook('rcpt', 'mx6_rcpt')
  this.register_hook('data_post', 'mx6_data_post')
}

export function load_config(this: Plugin): void {
  const ini = this.config.get(CONFIG_FILE, { booleans: BOOLEANS }, () => this.load_config()) as Ini
  const { config, errors } = readReceiveConfig(ini)
  for (const e of errors) this.logerror(e)
  this.cfg = config
  // Reconnect only when the connection settings changed.
  const settings = JSON.stringify(config.redis) + config.statsDays
  if (this.store && settings !== this.storeSettings) {
    void this.store.close()
    this.store = null
  }
  this.storeSettings = settings
  if (this.lintTimer) {
    clearInterval(this.lintTimer)
    this.lintTimer = null
  }
}

function connect(plugin: Plugin): ListStore {
  if (plugin.store) return plugin.store
  const s: RedisSettings = plugin.cfg.redis
  const client = createRedis(s)
  let lastError = ''
  let lost = false
  client.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt: log changes only.
    if (err.message !== lastError) plugin.logerror(`redis ${describeRedis(s)}: ${err.message}; IPv6 peers are deferred until it is back`)
    lastError = err.message
  })
  client.on('close', () => {
    if (plugin.store !== store || lost) return
    lost = true
    plugin.logerror(`redis ${describeRedis(s)}: connection lost; IPv6 peers are deferred until it is back`)
  })
  client.on('ready', () => {
    if (lost || lastError) plugin.loginfo(`redis ${describeRedis(s)}: connected again`)
    lost = false
    lastError = ''
    scheduleLint(plugin, client)
  })
  const store = new RedisListStore(client, new Keys(s.prefix), {
    timeoutMs: s.timeoutMs,
    statsDays: plugin.cfg.statsDays,
    onCountError: (err) => plugin.logwarn(`counter update failed: ${err.message}`),
  })
  plugin.store = store
  plugin.loginfo(`using redis ${describeRedis(s)} prefix ${s.prefix}`)
  return store
}

/** Non-canonical entries never match; tell the operator once per entry. */
function scheduleLint(plugin: Plugin, client: ReturnType<typeof createRedis>): void {
  if (plugin.cfg.lintInterval === 0 || plugin.lintTimer) return
  const keys = new Keys(plugin.cfg.redis.prefix)
  const run = async (): Promise<void> => {
    for (const [key, kind] of [
      [keys.ipAllow, 'ip'],
      [keys.domainAllow, 'domain'],
    ] as const) {
      try {
        for (const p of await lintHash(client, key, kind)) {
          const id = `${key} ${p.entry}`
          if (plugin.reported.has(id)) continue
          plugin.reported.add(id)
          plugin.logwarn(`${key} entry "${p.entry}" never matches: ${p.problem}${p.fix ? `; canonical form: ${p.fix}` : ''}`)
        }
      } catch (err) {
        plugin.logdebug(`lint of ${key} skipped: ${(err as Error).message}`)
      }
    }
  }
  void run()
  plugin.lintTimer = setInterval(() => void run(), plugin.cfg.lintInterval * 1000)
  plugin.lintTimer.unref()
}

export function hook_init_master(this: Plugin, next: Next): void {
  connect(this)
  next()
}

export function hook_init_child(this: Plugin, next: Next): void {
  connect(this)
  next()
}

export function shutdown(this: Plugin): void {
  if (this.lintTimer) clearInterval(this.lintTimer)
  this.lintTimer = null
  void this.store?.close()
  this.store = null
}

function state(txn: Transaction): TxnState {
  let s = txn.notes[NOTE] as TxnState | undefined
  if (!s) {
    s = { known: {}, recipients: new Map() }
    txn.notes[NOTE] = s
  }
  return s
}

async function lookup(plugin: Plugin, connection: Connection, req: LookupRequest): Promise<LookupReply | null> {
  if (isEmptyRequest(req)) return {}
  try {
    return await connect(plugin).lookup(req)
  } catch (err) {
    connection.logerror(plugin, `list lookup failed (${(err as Error).name}: ${(err as Error).message}); deferring IPv6 peer`)
    connection.transaction?.results.add(plugin, { err: `store: ${(err as Error).message}` })
    return null
  }
}

function record(plugin: Plugin, connection: Connection, phase: string, d: Decision, subject = ''): void {
  const txn = connection.transaction
  const tag = `${phase}:${d.rule}`
  if (txn) {
    const field = d.verdict === 'trusted' ? 'pass' : d.verdict === 'defer' ? 'fail' : d.verdict === 'skip' ? 'skip' : 'msg'
    txn.results.add(plugin, { [field]: tag, verdict: d.verdict, rule: d.rule, phase, reason: d.reason })
  }
  connection.loginfo(plugin, `${phase}${subject} verdict=${d.verdict} rule=${d.rule}: ${d.reason}`)
  if (d.verdict !== 'skip') plugin.store?.count([`${phase}.${d.verdict}.${d.rule}`])
}

function isMx6Session(plugin: Plugin, connection: Connection): boolean {
  return matchesListener(connection.local.ip, connection.local.port, plugin.cfg.mx6.listeners)
}

/**
 * The MX6 "retry over IPv4" reply: a plain first line, the Authentication-Results
 * this receiver would have prepended (Haraka's own assembly of the spf, dkim ...
 * results, so it is the same text the accepted message would carry), and the
 * registration URL when configured. Multi-line, each line printable ASCII and
 * at most 512 octets with its code.
 */
function fallbackReply(plugin: Plugin, connection: Connection): { code: number; dsn: unknown } {
  const m = plugin.cfg.mx6
  const field = (connection as Connection & { auth_results(): string }).auth_results()
  const lines = [
    ...replyLines(m.text),
    ...authResultsLines(field, m.authservId || connection.local.host || 'localhost'),
    ...(m.registrationUrl ? replyLines(`To be accepted over IPv6, ask at ${m.registrationUrl}`) : []),
  ]
  const [, subject, detail] = m.status.split('.').map(Number)
  return { code: Math.floor(m.code / 100) === 5 ? constants.deny : constants.denysoft, dsn: DSN.create(m.code, lines, subject, detail) }
}

function deferReply(plugin: Plugin): unknown {
  const { code, status, text } = plugin.cfg.defer
  const [, subject, detail] = status.split('.').map(Number)
  // The same text for every deferral: it must not tell a prober whether an address-book entry exists.
  return DSN.create(code, replyLines(text), subject, detail)
}

export function mx6_rcpt(this: Plugin, next: Next, connection: Connection, params: unknown[]): void {
  const txn = connection.transaction
  if (!txn) return next()
  const screen = screenPeer(peerFacts(connection), this.cfg.policy)
  if ('skip' in screen) {
    if (!txn.notes[`${NOTE}_skip`]) {
      txn.notes[`${NOTE}_skip`] = true
      record(this, connection, 'rcpt', screen.skip)
    }
    return next()
  }
  const rcptAddr = params[0] as Transaction['rcpt_to'][number]
  const s = state(txn)
  const facts = {
    ipv6: screen.ipv6,
    mx6: isMx6Session(this, connection),
    spf: spfFact(txn),
    mailFrom: mailbox(txn.mail_from),
    rcpt: mailbox(rcptAddr, this.cfg.recipientDelimiter),
  }
  const req = planRcpt(facts, s.known)
  lookup(this, connection, req)
    .then((reply) => {
      if (reply) {
        if (reply.ipAllow !== undefined) s.known.ipAllow = reply.ipAllow
        if (reply.domainAllow !== undefined) s.known.domainAllow = reply.domainAllow
      }
      const d = decideRcpt(facts, reply && { ...s.known, ...reply }, this.cfg.policy)
      s.recipients.set(rcptId(rcptAddr), { rcpt: facts.rcpt, prior: d })
      record(this, connection, 'rcpt', d, ` <${facts.rcpt?.address ?? '?'}>`)
      if (d.verdict === 'defer') return next(constants.denysoft, deferReply(this))
      next()
    })
    .catch((err: Error) => {
      connection.logerror(this, `rcpt decision failed: ${err.stack ?? err.message}`)
      next(constants.denysoft, deferReply(this))
    })
}

export function mx6_data_post(this: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction
  if (!txn) return next()
  const screen = screenPeer(peerFacts(connection), this.cfg.policy)
  if ('skip' in screen) return next()
  const s = state(txn)
  // A recipient this plugin did not see at rcpt (e.g. the plugin was reloaded)
  // is undecided, never trusted.
  const recipients = txn.rcpt_to.map(
    (r): RecipientState =>
      s.recipients.get(rcptId(r)) ?? {
        rcpt: mailbox(r, this.cfg.recipientDelimiter),
        prior: { verdict: 'pending', rule: 'none', final: false, reason: 'not seen at rcpt' },
      },
  )
  const facts = { mx6: isMx6Session(this, connection), spf: spfFact(txn), dkimPass: dkimPassDomains(txn), from: fromFact(txn), recipients }
  lookup(this, connection, planData(facts, this.cfg.policy))
    .then((reply) => {
      const { message } = decideData(facts, reply, this.cfg.policy)
      record(this, connection, 'data_post', message)
      if (message.verdict === 'fallback') {
        const r = fallbackReply(this, connection)
        return next(r.code, r.dsn)
      }
      if (message.verdict === 'defer') return next(constants.denysoft, deferReply(this))
      next()
    })
    .catch((err: Error) => {
      connection.logerror(this, `data_post decision failed: ${err.stack ?? err.message}`)
      next(constants.denysoft, deferReply(this))
    })
}
