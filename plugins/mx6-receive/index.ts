// mx6-receive: accepts mail from IPv6 peers only when something good is known
// about it; everything else gets a 4xx so the sender retries at the IPv4 MX.
//
// Haraka glue only: hooks gather facts, the pure core in decide.ts decides,
// and the verdict is mapped to next(). Haraka copies these named exports onto
// the plugin object (a default export would register nothing).
import { inspect } from 'node:util'
import constants from 'haraka-constants'
import DSN from 'haraka-dsn'
import { envelopeFingerprint, messageIdFingerprint, net64, toFields, type Attempt } from '../lib/followup'
import type { Connection, HarakaAddress, Next, PluginBase, Transaction } from '../lib/haraka'
import { Keys } from '../lib/keys'
import { authResultsLines } from '../lib/authres'
import type { CachingResolver } from '../lib/dns'
import { matchesListener } from '../lib/ip'
import { lintHash } from '../lib/lint'
import { createRedisClient, describeRedis, type RedisClient, type RedisSettings } from '../lib/redis'
import type { Mailbox } from '../lib/mailbox'
import { replyLines } from '../lib/reply'
import { isEmptyRequest, RedisListStore, type AttemptRecord, type ListStore, type LookupReply, type LookupRequest } from '../lib/store'
import { BOOLEANS, CONFIG_FILE, peerResolver, readReceiveConfig, type Ini, type ReceiveConfig } from './config'
import {
  acceptedTogether,
  alignedDomains,
  dataDomains,
  decideData,
  decideRcpt,
  greenSummary,
  observed,
  overriding,
  planData,
  planRcpt,
  printable,
  rememberAnswers,
  screenPeer,
  trustedRepeatPeer,
  type DataFacts,
  type Decision,
  type Known,
  type RcptFacts,
  type RecipientState,
  type SpfFact,
} from './decide'
import { spfFailure } from './auth'
import { peerGreen, planPeerGreen, type GreenBasis } from './green'
import { matchHelo, PeerSignalsMemo, type PeerSignals } from './peer-signals'
import { evaluateGuess, type GuessResult } from './spf-guess'
import { dkimFailDomains, dkimPassDomains, fromFact, mailbox, peerFacts, rcptId, spfFact } from './facts'

interface Plugin extends PluginBase {
  cfg: ReceiveConfig
  resolver: CachingResolver
  /** The peer signals memo and the settings it was made for (see signalsSource). */
  signalsMemo?: { cfg: ReceiveConfig; memo: PeerSignalsMemo }
  store: ListStore | null
  storeSettings: string
  lintTimer: NodeJS.Timeout | null
  lintEvery: number
  lintClient: RedisClient | null
  reported: Set<string>
  load_config(): void
}

/** Per-transaction state of a peer this plugin judges (see txnNotesOf). */
interface TxnState {
  /** The peer, as screened at rcpt: a peer this plugin judges. */
  ipv6: string
  known: Known
  /**
   * What rcpt decided for each recipient, by Haraka's address object (the one rcpt_to
   * holds after DATA; see recipientState for one it does not).
   */
  recipients: Map<HarakaAddress, RecipientState>
  /** Peer-level greenlisting found at rcpt: a basis for every recipient after DATA. */
  peerGreen?: GreenBasis
  /** The last-resort SPF evaluation, started by the first RCPT (null: not needed). */
  spfGuess?: Promise<void> | null
}

/** What this plugin keeps about a transaction (see txnNotesOf). */
interface TxnNotes {
  state?: TxnState
  /** The last-resort SPF result, once evaluated. */
  spfGuess?: GuessResult
}

/** What this plugin keeps about a connection (see connNotesOf). */
interface ConnNotes {
  /** The peer's DNS lookups, started once per connection. */
  signals?: Promise<PeerSignals>
  /** Their result once settled, so a later hook can go on without waiting on the promise. */
  signalsDone?: PeerSignals
  /** The peer's forward-confirmed host name (for the follow-up record), '' when none. */
  fcrdnsName?: string
  /** The peer signals are in the connection results. */
  signalsRecorded?: boolean
}

/**
 * The plugin's own state, kept beside Haraka's transaction and connection objects rather
 * than in their notes, and gone with them: notes are shared with every other plugin, some
 * of which log or serialise them (this state holds a promise and maps), and Haraka's own
 * objects keep their shape. Nothing outside this file reads it.
 */
const txnNotesOf = new WeakMap<Transaction, TxnNotes>()
const connNotesOf = new WeakMap<Connection, ConnNotes>()
/**
 * The notes of a transaction whose peer rcpt screened out (IPv4, relaying, authenticated,
 * private): not ours to judge. One shared, frozen object, kept in txnNotesOf like any
 * other transaction's notes: one lookup tells a hook both whether to leave and what it knows.
 */
const SKIPPED: TxnNotes = Object.freeze({})

/** The entry of `key` in `map`, made empty on first use. */
function notesOf<K extends object, V extends object>(map: WeakMap<K, V>, key: K): V {
  let n = map.get(key)
  if (!n) {
    n = {} as V
    map.set(key, n)
  }
  return n
}

const txnNotes = (txn: Transaction): TxnNotes => notesOf(txnNotesOf, txn)
const connNotes = (connection: Connection): ConnNotes => notesOf(connNotesOf, connection)

export function register(this: Plugin): void {
  this.store = null
  this.storeSettings = ''
  this.lintTimer = null
  this.lintEvery = 0
  this.lintClient = null
  this.reported = new Set()
  this.load_config()
  // Connect-time DNS lookups serve only undecided=defer (see mx6_connect); without it the
  // connect hook would cost every connection, IPv4 included, a call for nothing. (Switched
  // to undecided=defer by a config reload, RCPT starts the lookups itself.)
  if (this.cfg.policy.undecided === 'defer') this.register_hook('connect', 'mx6_connect')
  // No MAIL hook: everything MAIL FROM tells is asked at the first RCPT, in the same
  // round trip as the peer's lists (one hook less for every message, IPv4 included).
  this.register_hook('rcpt', 'mx6_rcpt')
  this.register_hook('data_post', 'mx6_data_post')
}

export function load_config(this: Plugin): void {
  const ini = this.config.get(CONFIG_FILE, { booleans: BOOLEANS }, () => this.load_config()) as Ini
  const { config, errors } = readReceiveConfig(ini)
  for (const e of errors) this.logerror(e)
  this.cfg = config
  this.resolver = peerResolver(config)
  // Reconnect only when the connection settings changed.
  const settings = JSON.stringify([config.redis, config.statsDays, config.cache, config.followup.writeWindowMs])
  if (this.store && settings !== this.storeSettings) {
    void this.store.close()
    this.store = null
    // The lint scan follows the new connection once it is ready.
    if (this.lintTimer) clearInterval(this.lintTimer)
    this.lintTimer = null
    this.lintClient = null
  }
  this.storeSettings = settings
  // A new lint interval takes effect now, on the connection we already have.
  if (this.lintTimer && this.lintEvery !== config.lintInterval) {
    clearInterval(this.lintTimer)
    this.lintTimer = null
    if (this.lintClient) scheduleLint(this, this.lintClient)
  }
}

function connect(plugin: Plugin): ListStore {
  if (plugin.store) return plugin.store
  const s: RedisSettings = plugin.cfg.redis
  const client = createRedisClient(s)
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
    attemptWriteMs: plugin.cfg.followup.writeWindowMs,
    onWriteError: (what, err) => plugin.logwarn(`${what} not written: ${err.message}`),
    peerCache: {
      entries: plugin.cfg.cache.entries,
      maxAgeMs: plugin.cfg.cache.maxAgeSec * 1000,
      onState: (on, why) => plugin.loginfo(on ? `peer list cache on: ${why}` : `peer list cache off: ${why}; every peer lookup goes to Redis`),
    },
  })
  plugin.store = store
  plugin.loginfo(`using redis ${describeRedis(s)} prefix ${s.prefix}`)
  return store
}

/** Non-canonical entries never match; tell the operator once per entry. */
function scheduleLint(plugin: Plugin, client: RedisClient): void {
  plugin.lintClient = client
  if (plugin.cfg.lintInterval === 0 || plugin.lintTimer) return
  const keys = new Keys(plugin.cfg.redis.prefix)
  const run = async (): Promise<void> => {
    for (const [key, kind] of [
      [keys.ipAllow, 'ip'],
      [keys.ipGreen, 'ip'],
      [keys.domainAllow, 'domain'],
      [keys.domainGreen, 'domain'],
      [keys.hostGreen, 'domain'],
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
  plugin.lintEvery = plugin.cfg.lintInterval
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
  this.lintClient = null
  void this.store?.close()
  this.store = null
}

/** The transaction's state, made at its first RCPT; `notes`: what txnNotesOf holds for it (looked up by the caller). */
function state(txn: Transaction, ipv6: string, notes: TxnNotes | undefined): TxnState {
  let n = notes
  if (!n) txnNotesOf.set(txn, (n = {}))
  n.state ??= { ipv6, known: {}, recipients: new Map() }
  return n.state
}

/**
 * What rcpt decided for a recipient of rcpt_to: found by Haraka's address object (the
 * one its RCPT hook was given), else (an object rcpt did not see, e.g. one a later plugin
 * made) by the address, the last RCPT of that address.
 */
function recipientState(s: TxnState, addr: HarakaAddress): RecipientState | undefined {
  const same = s.recipients.get(addr)
  if (same) return same
  const id = rcptId(addr)
  let found: RecipientState | undefined
  for (const [seen, r] of s.recipients) if (rcptId(seen) === id) found = r
  return found
}

/**
 * A repeat peer's ip:allow / ip:green answers from the peer list cache, remembered for
 * the transaction: Redis is then asked only what is left (nothing, for an allow-listed peer).
 */
function probePeerCache(plugin: Plugin, known: Known, ipv6: string): void {
  const store = connect(plugin)
  // By the peer's address: its candidate prefixes are built only when Redis must be asked.
  const peer = store.cachedPeer?.(ipv6, plugin.cfg.policy.green.ipGreen)
  if (peer) rememberAnswers(known, peer)
}

async function lookup(plugin: Plugin, connection: Connection, req: LookupRequest): Promise<LookupReply | null> {
  if (isEmptyRequest(req)) return {}
  try {
    return await connect(plugin).lookup(req)
  } catch (err) {
    connection.logerror(plugin, `list lookup failed (${(err as Error).name}: ${(err as Error).message}); ${plugin.cfg.mode === 'observe' ? 'would defer (mode=observe)' : 'deferring'} IPv6 peer`)
    connection.transaction?.results.add(plugin, { err: `store: ${(err as Error).message}` })
    return null
  }
}

/** Milliseconds since `start` (performance.now()), three decimals. */
function since(start?: number): string {
  return start === undefined ? '' : ` (${(performance.now() - start).toFixed(3)} ms)`
}

interface RecordOptions {
  start?: number
  /** More fields for the same results entry (one results.add per decision). */
  extra?: Record<string, string>
  /** The peer signals this decision consulted, for the log line. */
  signals?: PeerSignals
  /** Not a decision yet (pending at rcpt): counted, logged at debug, not added to the results. */
  quiet?: boolean
  /**
   * A verdict already recorded at rcpt, repeated after DATA: counted, logged at
   * debug, not added to the results again.
   */
  repeat?: boolean
}

/** The peer signals in a few words, for a decision's log line (made once per result of withHelo). */
function signalsText(p: PeerSignals): string {
  return signalsTexts.get(p) ?? ` [peer signals: fcrdns ${p.fcrdns.outcome} (${p.fcrdns.detail}); asn ${p.asn.outcome} (${p.asn.detail})]`
}

/**
 * A decision's log line, which is also the human summary of its results entry.
 * `subject`: what the recipient is (rcpt phase), e.g. " <bob@example.com>".
 */
function decisionLine(phase: string, d: Decision, o: RecordOptions, subject = ''): string {
  // The decision time (from the moment the hook has a peer to judge to its answer) ends
  // the line: benchmarks read it from here.
  return `${phase}${subject} verdict=${d.verdict} rule=${d.rule}: ${d.reason}${o.signals ? signalsText(o.signals) : ''}${since(o.start)}`
}

/**
 * A debug line made only when Haraka logs it: Haraka's logger formats an object argument
 * with util.inspect, which calls this, and skips its arguments altogether below its log
 * level. The lines of mail the plugin leaves alone or has already decided (logged at
 * debug) cost no string when debug is off.
 */
class DebugLine {
  constructor(
    private readonly phase: string,
    private readonly d: Decision,
    private readonly o: RecordOptions,
    private readonly subject?: string,
  ) {}

  [inspect.custom](): string {
    return this.toString()
  }

  toString(): string {
    return decisionLine(this.phase, this.d, this.o, this.subject)
  }
}

/**
 * A decision's results entry. The line is the results' human summary too (haraka-results
 * would otherwise collate one on every add). One object shape: haraka-results walks every
 * key of it.
 */
function resultsEntry(phase: string, d: Decision, line: string): Record<string, string> {
  const entry: Record<string, string> = { verdict: d.verdict, rule: d.rule, phase, reason: d.reason, human: line }
  entry[resultList(d.verdict)] = `${phase}:${d.rule}`
  if (d.override) entry.override = d.override
  return entry
}

/**
 * A decision's log line at info, results entry and counter. A recipient left pending at
 * rcpt (not a decision yet: its decision after DATA is recorded) and a verdict repeated
 * after DATA are counted and logged at debug, their line made only if debug is logged.
 */
function record(plugin: Plugin, connection: Connection, phase: string, d: Decision, o: RecordOptions, subject?: string): void {
  if (plugin.store) plugin.store.count(counterOf(phase, d))
  if (o.repeat || o.quiet) return connection.logdebug(plugin, new DebugLine(phase, d, o, subject))
  const line = decisionLine(phase, d, o, subject)
  const txn = connection.transaction
  if (txn) {
    const entry = resultsEntry(phase, d, line)
    if (o.extra) Object.assign(entry, o.extra)
    txn.results.add(plugin, entry)
  }
  connection.loginfo(plugin, line)
}

/**
 * The counter of a kind of decision (phase, verdict, rule), as the one-field list
 * ListStore.count takes: made once per kind, the same (frozen) list every time after.
 */
function counterOf(phase: string, d: Decision): readonly string[] {
  let byVerdict = counters.get(phase)
  if (!byVerdict) counters.set(phase, (byVerdict = new Map()))
  let byRule = byVerdict.get(d.verdict)
  if (!byRule) byVerdict.set(d.verdict, (byRule = new Map()))
  let fields = byRule.get(d.rule)
  if (!fields) byRule.set(d.rule, (fields = Object.freeze([`${phase}.${d.verdict}.${d.rule}`])))
  return fields
}
const counters = new Map<string, Map<string, Map<string, readonly string[]>>>()

/** No options: the line of a skip has no time, signals or extra fields. */
const NO_OPTIONS: RecordOptions = Object.freeze({})

/**
 * A peer this plugin leaves alone (IPv4, relaying, authenticated, private) passes through
 * untouched: no results entry, no counter, one debug line per transaction (a small object,
 * made into text only when Haraka logs debug).
 */
function logSkip(plugin: Plugin, connection: Connection, d: Decision): void {
  connection.logdebug(plugin, new DebugLine('rcpt', d, NO_OPTIONS))
}

/**
 * The haraka-results list a decision goes to (skips and pending recipients make no entry;
 * a would-defer of mode=observe is a message, not a failure other plugins should act on).
 */
function resultList(v: Decision['verdict']): 'pass' | 'fail' | 'msg' {
  return v === 'trusted' || v === 'green' ? 'pass' : v === 'defer' || v === 'fallback' ? 'fail' : 'msg'
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

/** The deferral replies of each [defer] configuration (a reload makes new ones). Haraka only reads them. */
const deferReplies = new WeakMap<ReceiveConfig['defer'], { unlisted: unknown; authFail: unknown }>()

/**
 * The deferral for a decision: failed authentication says so; everything else (no basis,
 * Redis trouble) gets one and the same text, so that it never tells a prober whether an
 * address-book entry exists.
 */
function deferReply(plugin: Plugin, d?: Decision): unknown {
  const c = plugin.cfg.defer
  let replies = deferReplies.get(c)
  if (!replies) {
    const [, subject, detail] = c.status.split('.').map(Number)
    replies = { unlisted: DSN.create(c.code, replyLines(c.text), subject, detail), authFail: DSN.create(c.code, replyLines(c.authFailText), subject, detail) }
    deferReplies.set(c, replies)
  }
  return d?.rule === 'auth-fail' ? replies.authFail : replies.unlisted
}

/**
 * Where the peer's DNS signals come from: the memo of the current resolver and settings
 * (made anew after a config reload); null when no DNS signal is enabled.
 */
function signalsSource(plugin: Plugin): PeerSignalsMemo | null {
  const g = plugin.cfg.policy.green
  if (!g.fcrdns && !g.hostGreen && !g.asn) return null
  const m = plugin.signalsMemo
  if (m && m.cfg === plugin.cfg && m.memo.dns === plugin.resolver) return m.memo
  const memo = new PeerSignalsMemo(plugin.resolver, { fcrdns: g.fcrdns || g.hostGreen, asn: g.asn, asnZone: plugin.cfg.signals.asnZone })
  plugin.signalsMemo = { cfg: plugin.cfg, memo }
  return memo
}

/**
 * Starts the peer's DNS lookups (FCrDNS, origin AS) once per connection: the connection's
 * notes, which hold them; null when none is enabled. A peer whose answers are all cached
 * has its signals at once (no promise).
 */
function startPeerSignals(plugin: Plugin, connection: Connection, ipv6: string): ConnNotes | null {
  const source = signalsSource(plugin)
  if (!source) return null
  const n = connNotes(connection)
  if (n.signalsDone || n.signals) return n
  const known = source.cached(ipv6)
  if (known) {
    n.signalsDone = known
    return n
  }
  const p = source.gather(ipv6)
  // Kept once settled, so a later hook can go on without waiting on the promise.
  p.then(
    (dnsPart) => (n.signalsDone = dnsPart),
    () => undefined,
  )
  n.signals = p
  return n
}

/**
 * Whether RCPT waits for the peer's DNS signals: only with undecided=defer on a
 * plain listener. Otherwise the DNS-based green rules are applied after DATA.
 */
function rcptNeedsSignals(plugin: Plugin, mx6: boolean): boolean {
  return plugin.cfg.policy.undecided === 'defer' && !mx6
}

/**
 * When RCPT waits for the DNS signals, they start as the peer connects, so the
 * lookups run while the client says EHLO and MAIL FROM. Otherwise they start at
 * the first RCPT, and only for a peer the lists neither trust nor greenlist (see mx6_rcpt).
 */
export function mx6_connect(this: Plugin, next: Next, connection: Connection): void {
  if (rcptNeedsSignals(this, isMx6Session(this, connection))) {
    const screen = screenPeer(peerFacts(connection), this.cfg.policy)
    if (!('skip' in screen)) startPeerSignals(this, connection, screen.ipv6)
  }
  next()
}

/** The peer signals with this transaction's HELO applied, recorded in the connection results once. */
async function peerSignals(plugin: Plugin, connection: Connection, ipv6: string): Promise<PeerSignals | undefined> {
  const n = startPeerSignals(plugin, connection, ipv6)
  if (!n) return undefined
  return withHelo(plugin, connection, n, n.signalsDone ?? (await n.signals!))
}

/**
 * The same without waiting: null when no DNS signal is enabled, undefined while the
 * lookups (started here if not yet) are still on their way.
 */
function settledPeerSignals(plugin: Plugin, connection: Connection, ipv6: string): PeerSignals | null | undefined {
  const n = startPeerSignals(plugin, connection, ipv6)
  if (!n) return null
  return n.signalsDone && withHelo(plugin, connection, n, n.signalsDone)
}

/** A peer's signals with a HELO name applied: the signals, their words for the log line and their connection results entry. */
interface HeloApplied {
  helo: string | undefined
  mode: ReceiveConfig['signals']['heloMatch']
  signals: PeerSignals
  entry: Readonly<Record<string, string>>
}

/**
 * The last HELO name applied to each DNS part of the peer signals (see withHelo): a repeat
 * peer's connections with the same HELO share one result, its words and results entry.
 */
const heloApplied = new WeakMap<PeerSignals, HeloApplied>()
/** The words of each peer signals result withHelo made (see signalsText). */
const signalsTexts = new WeakMap<PeerSignals, string>()

function withHelo(plugin: Plugin, connection: Connection, n: ConnNotes, dnsPart: PeerSignals): PeerSignals {
  const helo = connection.hello?.host
  const mode = plugin.cfg.signals.heloMatch
  let a = heloApplied.get(dnsPart)
  if (!a || a.helo !== helo || a.mode !== mode) {
    const signals: PeerSignals = Object.freeze({ fcrdns: matchHelo(dnsPart.fcrdns, helo, mode), asn: dnsPart.asn })
    const text = signalsText(signals)
    signalsTexts.set(signals, text)
    const entry = Object.freeze({ fcrdns: `${signals.fcrdns.outcome}: ${signals.fcrdns.detail}`, asn: `${signals.asn.outcome}: ${signals.asn.detail}`, human: `peer signals:${text}` })
    a = { helo, mode, signals, entry }
    heloApplied.set(dnsPart, a)
  }
  n.fcrdnsName = a.signals.fcrdns.confirmed[0] ?? ''
  if (!n.signalsRecorded) {
    n.signalsRecorded = true
    // Logged with the decision that uses them (see signalsText).
    connection.results.add(plugin, a.entry)
  }
  return a.signals
}

/**
 * Last-resort SPF for a MAIL FROM domain that publishes no SPF record (after
 * haraka-plugin-spf has said "None"); null when it does not apply. The guessed
 * result stands in for SPF in every later rule, and the results say it was a guess.
 * Never fails: a guess that cannot be evaluated is logged and left out.
 */
function lastResortSpf(plugin: Plugin, connection: Connection, txn: Transaction, ipv6: string): Promise<void> | null {
  if (!plugin.cfg.spfGuess.enabled || spfFact(txn)?.result !== 'none') return null
  const from = mailbox(txn.mail_from)
  if (!from) return null
  return connect(plugin)
    .spfGuess(from.domain)
    .then(async (stored) => {
      const record = stored ?? plugin.cfg.spfGuess.defaultRecord
      if (!record) return
      const result = await evaluateGuess(ipv6, from.domain, from.address, connection.hello?.host ?? '', record, plugin.cfg.signals.dnsTimeoutMs)
      const guess: GuessResult = { result, domain: from.domain, record, source: stored ? 'redis' : 'default' }
      txnNotes(txn).spfGuess = guess
      txn.results.add(plugin, { spf_guess: `${result} ${from.domain} (${guess.source}: ${printable(record)})` })
      connection.loginfo(plugin, `last-resort SPF for ${from.domain} (${guess.source} record "${printable(record)}"): ${result}`)
    })
    .catch((err: Error) => connection.logwarn(plugin, `last-resort SPF for ${from.domain} not evaluated: ${err.message}`))
}

/** Answers a decision that went wrong: logged, and the deferral reply, never an accept. */
function failed(plugin: Plugin, phase: string, next: Next, connection: Connection): (err: Error) => void {
  return (err) => {
    const observing = plugin.cfg.mode === 'observe'
    connection.logerror(plugin, `${phase} decision failed${observing ? ' (mode=observe: would-defer, mail left alone)' : ''}: ${err.stack ?? err.message}`)
    if (observing) return next()
    next(constants.denysoft, deferReply(plugin))
  }
}

// Haraka lets a hook that throws continue to the next plugin (CONT): a later rcpt_to
// plugin would then accept. Anything thrown here defers instead (see failed()). The
// try is written out in each hook, so that a call makes no closure.
export function mx6_rcpt(this: Plugin, next: Next, connection: Connection, params: unknown[]): void {
  try {
    rcptHook(this, next, connection, params)
  } catch (err) {
    failed(this, 'rcpt', next, connection)(err as Error)
  }
}

export function mx6_data_post(this: Plugin, next: Next, connection: Connection): void {
  try {
    dataPostHook(this, next, connection)
  } catch (err) {
    failed(this, 'data_post', next, connection)(err as Error)
  }
}

function rcptHook(plugin: Plugin, next: Next, connection: Connection, params: unknown[]): void {
  const txn = connection.transaction
  if (!txn) return next()
  // A peer screened out at the first RCPT stays out for the transaction (as after DATA).
  const notes = txnNotesOf.get(txn)
  if (notes === SKIPPED) return next()
  const screen = screenPeer(peerFacts(connection), plugin.cfg.policy)
  if ('skip' in screen) {
    // Left alone (IPv4, relaying, authenticated, private): a debug line once per
    // transaction, nothing else read, kept, recorded or counted.
    txnNotesOf.set(txn, SKIPPED)
    logSkip(plugin, connection, screen.skip)
    return next()
  }
  const start = performance.now()
  const rcptAddr = params[0] as Transaction['rcpt_to'][number]
  const s = state(txn, screen.ipv6, notes)
  if (s.known.ipAllow === undefined) probePeerCache(plugin, s.known, screen.ipv6)
  // A peer in ip:allow (the list cache knows it, or an earlier RCPT asked Redis) is trusted
  // for every recipient whatever SPF, the sender or the DNS signals say: decided here, with
  // nothing else read or started (no last-resort SPF guess, no lookup, no promise).
  if (s.known.ipAllow) {
    // ... and says so when it overrides a failed SPF check.
    const failure = spfFailure(spfFact(txn), plugin.cfg.policy.auth)
    const d = overriding(trustedRepeatPeer(screen.ipv6, s.known.ipAllow), failure)
    settleRcpt(plugin, connection, s, rcptAddr, mailbox(rcptAddr, plugin.cfg.recipientDelimiter), d, { start })
    return next()
  }
  if (s.spfGuess === undefined) s.spfGuess = lastResortSpf(plugin, connection, txn, screen.ipv6)
  const fail = failed(plugin, 'rcpt', next, connection)
  const mx6 = isMx6Session(plugin, connection)
  const conclude = (facts: RcptFacts, reply: LookupReply | null): void => {
    if (reply) rememberAnswers(s.known, reply)
    // The DNS signals serve only a peer on neither ip:allow nor ip:green: they start
    // once the lists have answered, and are done long before DATA ends.
    if (!facts.peerSignals && !s.known.ipAllow && !s.known.ipGreen) startPeerSignals(plugin, connection, screen.ipv6)
    const answers = reply && { ...s.known, ...reply }
    const d = decideRcpt(facts, answers, plugin.cfg.policy)
    // Peer-level greenlisting serves recipients left open after RCPT; an allow-listed peer leaves none.
    if (answers && !s.peerGreen && !answers.ipAllow) s.peerGreen = peerGreen(facts.ipv6, facts.peerSignals, answers, plugin.cfg.policy.green) ?? undefined
    // An ip:allow hit consults no green list: nothing to summarise then; nor for a
    // recipient left pending (not in the results: its decision after DATA is).
    const pending = d.verdict === 'pending'
    const extra = answers && !answers.ipAllow && !pending ? { green_signals: greenSummary(s.known) } : undefined
    const shown = settleRcpt(plugin, connection, s, rcptAddr, facts.rcpt, d, { start, signals: facts.peerSignals, quiet: pending, extra })
    if (d.verdict !== 'defer') return next()
    if (byPolicy(d)) rememberAttempt(plugin, connection, screen.ipv6, 'rcpt', shown.verdict as Attempt['verdict'], d.reason, [rcptAddr])
    if (shown.verdict === 'defer') return next(constants.denysoft, deferReply(plugin, d))
    next()
  }
  const ask = (signals: PeerSignals | undefined, probe: boolean): Promise<void> | undefined => {
    if (probe && s.known.ipAllow === undefined) probePeerCache(plugin, s.known, screen.ipv6)
    const facts: RcptFacts = {
      ipv6: screen.ipv6,
      mx6,
      spf: txnSpf(txn),
      mailFrom: mailbox(txn.mail_from),
      rcpt: mailbox(rcptAddr, plugin.cfg.recipientDelimiter),
      peerSignals: signals,
      now: Math.floor(Date.now() / 1000),
    }
    const req = planRcpt(facts, s.known, plugin.cfg.policy)
    // Everything this recipient needs is known already (an allow-listed peer; a repeat
    // peer the list cache answers, with nothing else to ask): decided at once, no promise.
    if (isEmptyRequest(req)) return void conclude(facts, {})
    return lookup(plugin, connection, req).then((reply) => conclude(facts, reply))
  }
  // When undecided mail waits for DATA anyway, RCPT does not wait for the peer's
  // DNS lookups: the DNS-based green rules are applied after DATA, by which time
  // the lookups started at the first RCPT have long finished. Nor does it for a peer
  // in ip:allow (trusted whatever they say). A last-resort SPF guess on its way is
  // waited for by every RCPT.
  if (!s.spfGuess) {
    // Nothing to wait for, or the DNS lookups have settled; the peer list cache was asked above.
    const signals = !rcptNeedsSignals(plugin, mx6) ? null : settledPeerSignals(plugin, connection, screen.ipv6)
    if (signals !== undefined) {
      ask(signals ?? undefined, false)?.catch(fail)
      return
    }
  }
  ;(rcptNeedsSignals(plugin, mx6) ? peerSignals(plugin, connection, screen.ipv6) : Promise.resolve(undefined))
    .then(async (signals) => {
      if (s.spfGuess) await s.spfGuess
      // After a wait: the peer list cache may know more by now.
      await ask(signals, true)
    })
    .catch(fail)
}

/**
 * A recipient's RCPT verdict: kept for data_post, recorded (results, log line, counter) as
 * the mode makes it (see observed); that recorded decision is returned.
 */
function settleRcpt(plugin: Plugin, connection: Connection, s: TxnState, addr: HarakaAddress, rcpt: Mailbox | null, d: Decision, o: RecordOptions): Decision {
  s.recipients.set(addr, { rcpt, prior: d })
  const shown = observed(d, plugin.cfg.mode)
  record(plugin, connection, 'rcpt', shown, o, ` <${rcpt?.address ?? '?'}>`)
  return shown
}

/** A deferral the policy made (no basis, failed authentication), not one Redis trouble forced. */
function byPolicy(d: Decision): boolean {
  return d.rule === 'none' || d.rule === 'auth-fail'
}

function dataPostHook(plugin: Plugin, next: Next, connection: Connection): void {
  const txn = connection.transaction
  if (!txn) return next()
  const n = txnNotesOf.get(txn)
  // A peer screened out at rcpt (IPv4, relaying, authenticated, private) stays out.
  if (n === SKIPPED) return next()
  const start = performance.now()
  // Read at entry: the data_post hooks still to run after this one.
  const filtersAfter = laterHooks(connection)
  // The peer as rcpt screened it; screened again only when rcpt did not run for this
  // transaction (e.g. the plugin was reloaded in between).
  let s = n?.state
  if (!s) {
    const screen = screenPeer(peerFacts(connection), plugin.cfg.policy)
    if ('skip' in screen) return next()
    s = state(txn, screen.ipv6, n)
  }
  const ipv6 = s.ipv6
  // A DKIM signature that failed may take away a basis RCPT settled (see decideData).
  const dkimFail = dkimFailDomains(txn)
  // Every recipient trusted or green for good at rcpt (an allow-listed peer, say): the
  // message takes their verdict at once, with nothing else to read.
  const accepted = dkimFail.length === 0 && acceptedAtRcpt(s, txn.rcpt_to)
  if (accepted) {
    record(plugin, connection, 'data_post', accepted, { start, repeat: true })
    return acceptNext(plugin, accepted, filtersAfter, next)
  }
  // A recipient this plugin did not see at rcpt (e.g. the plugin was reloaded)
  // is undecided, never trusted.
  const recipients = txn.rcpt_to.map(
    (r): RecipientState =>
      recipientState(s, r) ?? {
        rcpt: mailbox(r, plugin.cfg.recipientDelimiter),
        prior: { verdict: 'pending', rule: 'none', final: false, reason: 'not seen at rcpt' },
      },
  )
  const open = dkimFail.length > 0 || recipients.some((r) => !r.prior.final)
  const facts: DataFacts = {
    mx6: isMx6Session(plugin, connection),
    peerGreen: s.peerGreen ?? null,
    now: Math.floor(Date.now() / 1000),
    // SPF, DKIM and the From header matter only for recipients still open after RCPT.
    spf: open ? txnSpf(txn) : null,
    dkimPass: open ? dkimPassDomains(txn) : [],
    dkimFail,
    from: open ? fromFact(txn) : { problem: 'not needed: every recipient was decided at rcpt' },
    recipients,
  }
  const fail = failed(plugin, 'data_post', next, connection)
  const finish = (message: Decision, signals?: PeerSignals, extra: Record<string, string> = {}): void => {
    const shown = observed(message, plugin.cfg.mode)
    // A message whose recipients were all decided at rcpt repeats that verdict (and its
    // attempt, if any, was recorded then).
    record(plugin, connection, 'data_post', shown, { start, signals, repeat: !open, extra })
    if ((message.verdict === 'defer' || message.verdict === 'fallback') && byPolicy(message) && open) {
      rememberAttempt(plugin, connection, ipv6, 'data_post', shown.verdict as Attempt['verdict'], message.reason, txn.rcpt_to, authDomain(facts, plugin.cfg.policy))
    }
    if (shown.verdict === 'fallback') {
      const r = fallbackReply(plugin, connection)
      return next(r.code, r.dsn)
    }
    if (shown.verdict === 'defer') return next(constants.denysoft, deferReply(plugin, message))
    acceptNext(plugin, shown, filtersAfter, next)
  }
  // Every recipient was decided at rcpt, not all accepted (acceptedAtRcpt took the rest):
  // nothing to look up, the verdict stands (at once).
  if (!open) return finish(decideData(facts, {}, plugin.cfg.policy).message)
  const eligible = dataDomains(facts, plugin.cfg.policy)
  // An authenticated domain in domain:allow decides every open recipient, whatever the
  // books, green lists and DNS signals say: when the list cache knows it is listed, that
  // is all (at once, before the other lookups are planned or the peer's DNS lookups waited for).
  const listed = eligible && connect(plugin).cached?.({ domainCandidates: eligible.candidates })
  if (listed?.domainAllow) return finish(decideData(facts, listed, plugin.cfg.policy).message)
  const req = planData(facts, plugin.cfg.policy, eligible)
  const green = plugin.cfg.policy.green
  const decide = (signals: PeerSignals | undefined): Promise<void> | undefined => {
    // One pipeline: the message's lookups and, for a peer not yet green, the DNS-based green lists.
    if (signals) Object.assign(req, planPeerGreen(ipv6, signals, s.known, green))
    const conclude = (reply: LookupReply | null): void => {
      let decided = facts
      if (reply && signals) {
        rememberAnswers(s.known, reply)
        const pg = peerGreen(ipv6, signals, s.known, green)
        if (pg) decided = { ...facts, peerGreen: pg }
      }
      finish(decideData(decided, reply, plugin.cfg.policy).message, signals, reply && signals ? { green_signals: greenSummary(s.known) } : {})
    }
    // Nothing left to ask (the list cache and RCPT answered it all): decided at once.
    if (isEmptyRequest(req)) return void conclude({})
    return lookup(plugin, connection, req).then(conclude)
  }
  // A peer already green needs no DNS signals; lookups that have settled are used at once.
  const signals = s.peerGreen ? null : settledPeerSignals(plugin, connection, ipv6)
  if (signals !== undefined) return void decide(signals ?? undefined)?.catch(fail)
  peerSignals(plugin, connection, ipv6)
    .then((later) => decide(later))
    .catch(fail)
}

/**
 * Ends data_post for a message let through. OK ends it here: content spam filters listed
 * after mx6-receive do not run for trusted mail; a malware scanner listed before it
 * already has. With no data_post hook after this one, OK and CONT do the same (and CONT
 * is not logged).
 */
function acceptNext(plugin: Plugin, message: Decision, filtersAfter: boolean, next: Next): void {
  // mode=observe changes nothing in the mail flow: no filter is skipped either.
  if (message.verdict === 'trusted' && plugin.cfg.trustedSkipsFilters && filtersAfter && plugin.cfg.mode === 'enforce') return next(constants.ok)
  next()
}

/** The message's verdict when rcpt trusted or greenlisted every recipient for good; else null. */
function acceptedAtRcpt(s: TxnState, rcptTo: HarakaAddress[]): Decision | null {
  if (rcptTo.length === 0) return null
  const priors: Decision[] = []
  for (const r of rcptTo) {
    const prior = recipientState(s, r)?.prior
    if (!prior?.final) return null
    priors.push(prior)
  }
  return acceptedTogether(priors)
}

/**
 * Whether plugins after this one still have the current hook to run (Haraka's
 * connection.hooks_to_run); when Haraka does not say, assume they do.
 */
function laterHooks(connection: Connection): boolean {
  const rest = (connection as Connection & { hooks_to_run?: unknown[] }).hooks_to_run
  return !Array.isArray(rest) || rest.length > 0
}

/** The sending domain for the follow-up: the aligned, authenticated From domain, if any. */
function authDomain(f: DataFacts, policy: ReceiveConfig['policy']): string {
  return 'mailbox' in f.from && alignedDomains(f, policy.alignment).length ? f.from.mailbox.domain : ''
}

/**
 * Fingerprints a deferred (or fallen-back) IPv6 attempt so that its return over
 * IPv4 can be recognised (mx6-learn) and reported (mx6ctl followup). Written off
 * the decision path.
 */
function rememberAttempt(plugin: Plugin, connection: Connection, ipv6: string, phase: 'rcpt' | 'data_post', verdict: Attempt['verdict'], reason: string, rcpts: HarakaAddress[], domain = ''): void {
  const f = plugin.cfg.followup
  const txn = connection.transaction
  if (!f.enabled || !txn || !plugin.store) return
  // Only what the transaction will not hold once Haraka resets it is read here (strings, no
  // reference to the transaction); the fingerprints and fields are built when the store
  // writes the record, with the others of its batch, after this hook has answered.
  const from = mailbox(txn.mail_from)
  const addrs = rcpts.map((r) => `${r.user}@${r.host}`)
  const messageId = phase === 'data_post' ? txn.header.get_all('Message-ID')[0] : undefined
  const delimiter = plugin.cfg.recipientDelimiter
  const time = Math.floor(Date.now() / 1000)
  const host = connNotesOf.get(connection)?.fcrdnsName ?? ''
  const size = phase === 'data_post' ? Number((txn as Transaction & { data_bytes?: number }).data_bytes ?? 0) : 0
  const make = (): AttemptRecord => {
    const attempt: Attempt = {
      time,
      phase,
      verdict,
      reason,
      mailFrom: from?.address ?? '<>',
      rcpts: addrs.map((a) => printable(a, 100)),
      net: net64(ipv6),
      host,
      domain: domain || from?.domain || '',
      size,
    }
    return { envelopeHash: envelopeFingerprint(from?.address ?? '', addrs, delimiter), midHash: messageIdFingerprint(messageId), fields: toFields(attempt) }
  }
  plugin.store.recordAttempt(make, f.ttlDays * 86400, f.maxEntries)
}

/** SPF as haraka-plugin-spf found it, or the last-resort guess when the domain publishes none. */
function txnSpf(txn: Transaction): SpfFact | null {
  const spf = spfFact(txn)
  const guess = txnNotesOf.get(txn)?.spfGuess
  if (guess && (!spf || spf.result === 'none')) return { result: guess.result, domain: guess.domain, guess: true }
  return spf
}
