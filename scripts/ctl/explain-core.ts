// mx6ctl explain: the decision of mx6-receive for given facts, and what would change it.
//
// This runs the plugin's own session (plugins/mx6-receive/session.ts: every RCPT, then
// DATA), against a ListStore (Redis in mx6ctl, a fake one in unit tests), so it decides
// exactly as the plugin does. Suggestions are not guessed: each is checked by running the
// session again with the entry it would add.
import os from 'node:os'
import ipaddr from 'ipaddr.js'
import type { HarakaAddress } from '../../plugins/lib/haraka'
import { classifyPeer, matchesListener } from '../../plugins/lib/ip'
import type { Mailbox } from '../../plugins/lib/mailbox'
import type { ListStore } from '../../plugins/lib/store'
import { printable } from '../../plugins/lib/text'
import type { ReceiveConfig } from '../../plugins/mx6-receive/config'
import type { Decision, SpfFact } from '../../plugins/mx6-receive/decide'
import { authenticatedDomains, dataFailure, type FromFact } from '../../plugins/mx6-receive/decide-data'
import { mailbox, rcptId } from '../../plugins/mx6-receive/facts'
import type { PeerSignals } from '../../plugins/mx6-receive/peer-signals'
import { deferText } from '../../plugins/mx6-receive/record'
import { Session, type Envelope, type Sources } from '../../plugins/mx6-receive/session'
import { hasArcHeader, type ArcOutcome } from '../../plugins/mx6-receive/arc'
import type { DmarcInput, DmarcOutcome } from '../../plugins/mx6-receive/dmarc'
import type { GuessResult } from '../../plugins/mx6-receive/spf-guess'
import type { ZoneResult } from '../../plugins/mx6-receive/reputation'
import { notesWhyNot, OverlayStore, suggest } from './explain-suggest'

export const SPF_RESULTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror'] as const

/** The facts of one SMTP transaction, as the operator gives them. */
export interface ExplainFacts {
  /** The peer's address as given (validated by the caller with classifyPeer). */
  ip: string
  helo: string
  /** MAIL FROM as Haraka parses it; null for the null sender <>. */
  mailFrom: HarakaAddress | null
  /** RCPT TO in order; empty: one recipient whose address does not matter (no book rules). */
  rcpts: HarakaAddress[]
  from: FromFact
  /** d= of the DKIM signatures that verified (canonical). */
  dkimPass: string[]
  /** d= of the DKIM signatures that failed (canonical). */
  dkimFail: string[]
  /** haraka-plugin-spf's MAIL FROM result; given=false when explain assumed "none". */
  spf: { result: string; given: boolean }
  /** The local address the peer connected to (for MX6 listeners); null when not given. */
  listener: { ip: string; port: number } | null
  /** Unix seconds. */
  now: number
  /** The message as received (--message), for its ARC chain; null when not given. */
  message?: Buffer | null
}

export interface ExplainDeps {
  cfg: ReceiveConfig
  store: Pick<ListStore, 'lookup' | 'spfGuess'>
  /** FCrDNS/origin AS of the peer (gatherPeerSignals: the lookups the plugin's PeerSignalsMemo makes); undefined when all are disabled. */
  peerSignals(ipv6: string, helo: string): Promise<PeerSignals | undefined>
  /** The plugin's last-resort SPF evaluation (spf-guess.ts). */
  evaluateGuess(ip: string, domain: string, mailFrom: string, helo: string, record: string, timeoutMs: number): Promise<string>
  /** Haraka's remote.is_private for this address. */
  isPrivate(ip: string): boolean
  /** The plugin's DMARC evaluation (dmarc.ts) through the same resolver settings; absent: not evaluated. */
  evaluateDmarc?(input: DmarcInput): Promise<DmarcOutcome>
  /** The plugin's ARC validation (arc.ts) of the given message; absent: not evaluated. */
  evaluateArc?(message: Buffer, fromDomain: string): Promise<ArcOutcome>
  /** The providers' domain zones as the plugin asks them; absent: none configured. */
  domainZones?(domains: readonly string[]): Promise<ZoneResult[]>
}

export interface RcptOutcome {
  /** As given, user@host (or "" for the anonymous recipient). */
  given: string
  mailbox: Mailbox | null
  decision: Decision
}

/** One run of the rcpt and data_post hooks. */
export interface Evaluation {
  /** The screen's skip decision (IPv4, private ...), or null when the policy applies. */
  skip: Decision | null
  mx6: boolean
  /** The SPF fact the session used (after a last-resort guess). */
  spf: SpfFact | null
  guess: GuessResult | null
  guessNote: string | null
  /** The peer signals the session asked for, if it did. */
  signals: PeerSignals | undefined
  rcpts: RcptOutcome[]
  /** Null when every recipient was deferred at RCPT (no DATA over IPv6). */
  data: Decision | null
  /** The final answer for the message. */
  final: Decision
  /** Where the final answer was given. */
  phase: 'screen' | 'rcpt' | 'data_post'
  storeErrors: string[]
  /** DMARC of the From domain, as evaluated after DATA. */
  dmarc?: DmarcOutcome | null
  /** The message's ARC chain, when evaluated after DATA (--message, ARC headers, nothing else authenticates). */
  arc?: ArcOutcome | null
  /** The providers' domain zones the session asked (at RCPT or after DATA). */
  domainZones?: readonly ZoneResult[]
}

export interface Change {
  /** The verdict the message would get with it (checked). */
  verdict: 'trusted' | 'green'
  /** The mx6ctl commands (all of them) that create the basis. */
  commands: string[]
  /** What the message would get then. */
  effect: string
}

export interface Explanation {
  peer: { given: string; canonical: string | null; family: 'ipv4' | 'ipv6' | null; private: boolean }
  helo: string
  mx6: boolean
  listener: string | null
  mailFrom: string | null
  /** The SPF fact the decision used (after a last-resort guess), null when there is none. */
  spf: SpfFact | null
  spfAssumed: boolean
  guess: GuessResult | null
  from: string
  /** Passing SPF/DKIM domains aligned with the From domain. */
  alignedDomains: readonly string[]
  dkimPass: string[]
  dkimFail: string[]
  /** The message's failed authentication (SPF, the From domain's DKIM), or null. */
  authFailure: string | null
  /** The From domain's DMARC (null: not evaluated). */
  dmarc: DmarcOutcome | null
  /** The message's ARC chain (null: not evaluated: no --message, no ARC headers, or the From authenticated otherwise). */
  arc: ArcOutcome | null
  /** The providers' domain zones asked about the authenticated domains (empty: none asked). */
  domainZones: readonly ZoneResult[]
  /** enforce or observe (mode=observe: deferrals are recorded as would-defer, the mail left alone). */
  mode: ReceiveConfig['mode']
  peerSignals: PeerSignals | null
  /** The screen's skip decision (IPv4, private ...), or null when the policy applies. */
  skip: Decision | null
  rcpts: RcptOutcome[]
  data: Decision | null
  final: Decision
  phase: 'screen' | 'rcpt' | 'data_post'
  /** One line: what the sender gets. */
  result: string
  changes: Change[]
  notes: string[]
  storeErrors: string[]
}

/**
 * Haraka's remote.is_private: haraka-net-utils is_local_ip() || is_private_ip(),
 * i.e. an address of this host, ::, ::1, link-local (fe80::/10) or ULA (fc00::/7).
 */
export function harakaIsPrivate(ip: string): boolean {
  const peer = classifyPeer(ip)
  if (!peer) return false
  if (peer.family === 'ipv6') {
    const range = ipaddr.IPv6.parse(peer.canonical).range()
    if (['unspecified', 'loopback', 'linkLocal', 'uniqueLocal'].includes(range)) return true
  } else {
    const range = ipaddr.IPv4.parse(peer.canonical).range()
    if (['unspecified', 'loopback', 'linkLocal', 'private'].includes(range)) return true
    if (/^(192\.0\.2|198\.51\.100|203\.0\.113)\./.test(peer.canonical)) return true
  }
  const local = Object.values(os.networkInterfaces())
    .flat()
    .map((a) => (a ? classifyPeer(a.address)?.canonical : undefined))
  return local.includes(peer.canonical)
}

/** One run of the session for the facts: every RCPT, then DATA for the recipients kept. */
async function evaluate(f: ExplainFacts, deps: ExplainDeps, store: Pick<ListStore, 'lookup' | 'spfGuess'>): Promise<Evaluation> {
  const cfg = deps.cfg
  const storeErrors: string[] = []
  const ev: Evaluation = { skip: null, mx6: false, spf: null, guess: null, guessNote: null, signals: undefined, rcpts: [], data: null, final: NO_DECISION, phase: 'screen', storeErrors }
  const sources: Sources = {
    store,
    peerSignals: async (ipv6) => (ev.signals = await deps.peerSignals(ipv6, f.helo)),
    evaluateGuess: deps.evaluateGuess,
    evaluateDmarc: deps.evaluateDmarc,
    domainZones: deps.domainZones,
    now: () => f.now,
    report: (e) => {
      if (e.kind === 'guess') ev.guess = e.guess
      else if (e.kind === 'guess-error') ev.guessNote = `last-resort SPF for ${e.domain} not evaluated: ${e.message} (the plugin would go on without it)`
      else if (e.kind === 'store-error') storeErrors.push(`list lookup failed (${e.name}: ${e.message})`)
    },
  }
  // The listener the peer connected to tells an MX6 session (isMx6Session).
  ev.mx6 = !!f.listener && matchesListener(f.listener.ip, f.listener.port, cfg.mx6.listeners)
  // haraka-plugin-spf records a MAIL FROM result only for a non-null sender.
  const envelope: Envelope = {
    peer: { ip: f.ip, private: deps.isPrivate(f.ip), relaying: false, authenticated: false },
    mx6: ev.mx6,
    helo: f.helo,
    spf: f.mailFrom?.host ? { result: f.spf.result, domain: f.mailFrom.host } : null,
    mailFrom: mailbox(f.mailFrom),
  }
  const session = new Session(cfg, sources, envelope)
  if ('skip' in session.screen) {
    ev.skip = ev.final = session.screen.skip
    ev.spf = envelope.spf
    return ev
  }
  const kept: Array<{ key: object; id: string; rcpt: Mailbox | null }> = []
  for (const addr of f.rcpts.length ? f.rcpts : [null]) {
    const r = { key: {}, id: addr ? rcptId(addr) : '', rcpt: addr ? mailbox(addr, cfg.recipientDelimiter) : null }
    const o = await session.rcpt(r.key, r.id, r.rcpt)
    ev.rcpts.push({ given: addr ? `${addr.user}@${addr.host}` : '', mailbox: r.rcpt, decision: o.decision })
    ev.domainZones ??= o.domainZones
    // A deferred recipient is not in rcpt_to after RCPT (in mode=observe it is).
    if (o.decision.verdict !== 'defer') kept.push(r)
  }
  ev.spf = session.spfResult()
  if (kept.length === 0) return { ...ev, final: ev.rcpts[0].decision, phase: 'rcpt' }
  const message = f.message && deps.evaluateArc && hasArcHeader(f.message) ? f.message : null
  const arc = message ? (fromDomain: string) => deps.evaluateArc!(message, fromDomain) : undefined
  const o = await session.data({ recipients: kept, dkimPass: f.dkimPass, dkimFail: f.dkimFail, from: () => f.from, arc })
  return { ...ev, data: o.decision, final: o.decision, phase: 'data_post', dmarc: o.dmarc ?? null, arc: o.arc ?? null, domainZones: o.domainZones ?? ev.domainZones }
}

const NO_DECISION: Decision = { verdict: 'skip', rule: 'none', final: true, reason: '' }

function resultLine(cfg: ReceiveConfig, final: Decision, phase: Evaluation['phase'] | 'screen'): string {
  const when = phase === 'rcpt' ? 'at RCPT' : 'after DATA'
  switch (final.verdict) {
    case 'skip':
      return 'not acted on by mx6-receive: the other plugins decide'
    case 'trusted':
      return `accepted as trusted (${final.rule})${cfg.trustedSkipsFilters && cfg.mode === 'enforce' ? ': content spam filters listed after mx6-receive are skipped (the malware scan before it is not)' : ''}`
    case 'green':
      return `accepted as green (${final.rule}): every content filter still applies`
    case 'fallback':
      return `MX6 fallback ${cfg.mx6.code} ${cfg.mx6.status} after DATA: an MX6-aware sender redelivers over IPv4 to the regular MX at once`
    case 'defer':
      return `deferred ${when} with ${cfg.defer.code} ${cfg.defer.status} "${deferText(cfg.defer, final)}"${final.rule === 'store-error' ? ' (Redis trouble)' : ''}: the sender retries, at the IPv4 MX`
    case 'would-defer':
    case 'would-fallback':
      return `mode=observe: ${final.verdict} (${final.rule}), recorded only; the message is accepted as if mx6-receive were not there (mode=enforce would ${final.verdict === 'would-defer' ? `defer it with ${cfg.defer.code} ${cfg.defer.status}` : `answer ${cfg.mx6.code} ${cfg.mx6.status}`})`
    default:
      return `${final.verdict} (${final.rule})`
  }
}

/** Explains one transaction: the plugin's decisions, then verified suggestions. */
export async function explain(f: ExplainFacts, given: ExplainDeps): Promise<Explanation> {
  const deps = once(given)
  const cfg = deps.cfg
  const peer = classifyPeer(f.ip)
  const ev = await evaluate(f, deps, deps.store)
  const fromText = 'mailbox' in f.from ? f.from.mailbox.address : `no usable From (${f.from.problem})`
  const auth = { spf: ev.spf, dkimPass: f.dkimPass, dkimFail: f.dkimFail, from: f.from, dmarc: ev.dmarc }
  const authd = authenticatedDomains(auth, cfg.policy.alignment)
  const mailFrom = mailbox(f.mailFrom)
  const out: Explanation = {
    peer: { given: f.ip, canonical: peer?.canonical ?? null, family: peer?.family ?? null, private: deps.isPrivate(f.ip) },
    helo: f.helo,
    mx6: ev.mx6,
    listener: f.listener ? `[${f.listener.ip}]:${f.listener.port}` : null,
    mailFrom: mailFrom?.address ?? (f.mailFrom ? `unusable (${printable(`${f.mailFrom.user}@${f.mailFrom.host}`, 80)})` : null),
    spf: ev.spf,
    spfAssumed: !f.spf.given,
    guess: ev.guess,
    from: fromText,
    alignedDomains: authd,
    dkimPass: f.dkimPass,
    dkimFail: f.dkimFail,
    authFailure: dataFailure(auth, cfg.policy),
    dmarc: ev.dmarc ?? null,
    arc: ev.arc ?? null,
    domainZones: ev.domainZones ?? [],
    mode: cfg.mode,
    peerSignals: ev.signals ?? null,
    skip: ev.skip,
    rcpts: ev.rcpts,
    data: ev.data,
    final: ev.final,
    phase: ev.phase,
    result: resultLine(cfg, ev.final, ev.phase),
    changes: [],
    notes: ev.guessNote ? [ev.guessNote] : [],
    storeErrors: ev.storeErrors,
  }
  if (ev.skip) {
    if (ev.skip.rule === 'ipv4') out.notes.push('mx6-receive does not act on IPv4 peers (IPv4-mapped IPv6 included): no list entry, SPF or DKIM result changes that')
    else if (ev.skip.rule === 'private') out.notes.push('a private IPv6 peer (loopback, ULA, link-local or an address of this host) is skipped while skip_private=true; with skip_private=false the policy would apply')
    else out.notes.push(`skipped (${ev.skip.rule}): ${ev.skip.reason}`)
    return out
  }
  if (ev.storeErrors.length) {
    out.notes.push('Redis trouble: the plugin defers every IPv6 peer until the store answers again; no list entry changes that')
    return out
  }
  if (ev.phase === 'rcpt') out.notes.push('every recipient was deferred at RCPT, so the message body is never sent over IPv6')
  if (ev.mx6) out.notes.push(`MX6 session: nothing is refused at RCPT; without a basis the sender gets ${cfg.mx6.code} ${cfg.mx6.status} after DATA`)
  else if (cfg.mx6.listeners.length && !f.listener) out.notes.push(`not an MX6 session (give --listener to explain a connection to an MX6 listener: ${cfg.mx6.listeners.map((l) => l.ip).join(', ')})`)

  if (ev.final.verdict === 'trusted') {
    out.notes.push('already trusted: nothing to change')
    return out
  }
  await suggest(f, deps, ev, authd, out, (add) => evaluate(f, deps, new OverlayStore(deps.store, add)))
  notesWhyNot(f, ev, cfg, authd, out)
  return out
}

/**
 * The deps with the peer's DNS signals and the last-resort SPF evaluation asked once per
 * explanation: the suggestions run the session again with the same facts.
 */
function once(deps: ExplainDeps): ExplainDeps {
  const signals = new Map<string, Promise<PeerSignals | undefined>>()
  const guesses = new Map<string, Promise<string>>()
  return {
    ...deps,
    peerSignals: (ipv6, helo) => {
      const key = `${ipv6} ${helo}`
      if (!signals.has(key)) signals.set(key, deps.peerSignals(ipv6, helo))
      return signals.get(key)!
    },
    evaluateGuess: (...args) => {
      const key = JSON.stringify(args)
      if (!guesses.has(key)) guesses.set(key, deps.evaluateGuess(...args))
      return guesses.get(key)!
    },
  }
}
