// mx6ctl explain: the decision of mx6-receive for given facts, and what would change it.
//
// This runs the plugin's own decision core (screenPeer, planRcpt/decideRcpt,
// planData/decideData, the green rules, last-resort SPF) in the order the
// Haraka hooks run it (mail, then rcpt per recipient, then data_post), against
// a ListStore (Redis in mx6ctl, a fake one in unit tests). Suggestions are not
// guessed: each is checked by running the same decision again with the entry
// it would add.
import os from 'node:os'
import ipaddr from 'ipaddr.js'
import { aligned, canonicalDomain, orgDomain } from '../../plugins/lib/domain'
import type { HarakaAddress } from '../../plugins/lib/haraka'
import { candidatePrefixes, classifyPeer, matchesListener } from '../../plugins/lib/ip'
import type { Mailbox } from '../../plugins/lib/mailbox'
import { isEmptyRequest, type ListStore, type LookupReply, type LookupRequest } from '../../plugins/lib/store'
import type { ReceiveConfig } from '../../plugins/mx6-receive/config'
import {
  alignedDomains,
  dataFailure,
  decideData,
  observed,
  decideRcpt,
  planData,
  planRcpt,
  printable,
  rememberAnswers,
  screenPeer,
  type DataDecision,
  type DataFacts,
  type Decision,
  type FromFact,
  type Known,
  type RcptFacts,
  type RecipientState,
  type SpfFact,
} from '../../plugins/mx6-receive/decide'
import { mailbox, rcptId } from '../../plugins/mx6-receive/facts'
import { peerGreen, type GreenBasis } from '../../plugins/mx6-receive/green'
import type { PeerSignals } from '../../plugins/mx6-receive/peer-signals'
import type { GuessResult } from '../../plugins/mx6-receive/spf-guess'

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
}

export interface RcptOutcome {
  /** As given, user@host (or "" for the anonymous recipient). */
  given: string
  mailbox: Mailbox | null
  decision: Decision
}

/** One run of the rcpt and data_post hooks. */
interface Evaluation {
  rcpts: RcptOutcome[]
  /** Null when every recipient was deferred at RCPT (no DATA over IPv6). */
  data: DataDecision | null
  dataFacts: DataFacts | null
  /** The final answer for the message. */
  final: Decision
  /** Where the final answer was given. */
  phase: 'rcpt' | 'data_post'
  storeErrors: string[]
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

/** List entries a suggestion would add. */
export interface Additions {
  ipAllow?: string[]
  domainAllow?: string[]
  books?: Array<{ owner: string; member: string }>
  hostGreen?: string[]
  asnGreen?: string[]
}

/** A store that answers as if some entries were added, on top of the real one. */
export class OverlayStore implements Pick<ListStore, 'lookup' | 'spfGuess'> {
  constructor(
    private readonly inner: Pick<ListStore, 'lookup' | 'spfGuess'>,
    private readonly add: Additions,
  ) {}

  async lookup(req: LookupRequest): Promise<LookupReply> {
    const reply = await this.inner.lookup(req)
    const hit = (fields: readonly string[] | undefined, entries: string[] | undefined) => {
      const e = fields?.find((f) => entries?.includes(f))
      return e === undefined ? null : { entry: e, note: 'suggested by mx6ctl explain' }
    }
    if (req.ipCandidates?.length && !reply.ipAllow) reply.ipAllow = hit(req.ipCandidates, this.add.ipAllow)
    if (req.domainCandidates?.length && !reply.domainAllow) reply.domainAllow = hit(req.domainCandidates, this.add.domainAllow)
    if (req.hostGreenCandidates?.length && !reply.hostGreen) reply.hostGreen = hit(req.hostGreenCandidates, this.add.hostGreen)
    if (req.asnGreenCandidates?.length && !reply.asnGreen) reply.asnGreen = hit(req.asnGreenCandidates, this.add.asnGreen)
    if (req.books?.length) {
      reply.books = req.books.map((b, i) => reply.books?.[i] ?? b.members.find((m) => this.add.books?.some((x) => x.owner === b.owner && x.member === m)) ?? null)
    }
    return reply
  }

  spfGuess(domain: string): Promise<string | null> {
    return this.inner.spfGuess(domain)
  }
}

/** What the hooks before rcpt established: the peer screen, MX6 session, SPF (with the guess), signals. */
interface Session {
  ipv6: string | null
  skip: Decision | null
  mx6: boolean
  mailFrom: Mailbox | null
  spf: SpfFact | null
  guess: GuessResult | null
  signals: PeerSignals | undefined
  notes: string[]
}

async function prepare(f: ExplainFacts, deps: ExplainDeps): Promise<Session> {
  const cfg = deps.cfg
  const notes: string[] = []
  const screen = screenPeer({ ip: f.ip, private: deps.isPrivate(f.ip), relaying: false, authenticated: false }, cfg.policy)
  const mailFrom = mailbox(f.mailFrom)
  // haraka-plugin-spf records a MAIL FROM result only for a non-null sender.
  const spf: SpfFact | null = f.mailFrom?.host ? { result: f.spf.result, domain: f.mailFrom.host } : null
  const session: Session = { ipv6: null, skip: null, mx6: false, mailFrom, spf, guess: null, signals: undefined, notes }
  if ('skip' in screen) {
    session.skip = screen.skip
    return session
  }
  const ipv6 = screen.ipv6
  session.ipv6 = ipv6
  // isMx6Session: the local address and port the peer connected to.
  session.mx6 = !!f.listener && matchesListener(f.listener.ip, f.listener.port, cfg.mx6.listeners)
  // As at the first RCPT: last-resort SPF when the domain publishes none.
  if (cfg.spfGuess.enabled && mailFrom && spf?.result === 'none') {
    try {
      const stored = await deps.store.spfGuess(mailFrom.domain)
      const record = stored ?? cfg.spfGuess.defaultRecord
      if (record) {
        const result = await deps.evaluateGuess(ipv6, mailFrom.domain, mailFrom.address, f.helo, record, cfg.signals.dnsTimeoutMs)
        session.guess = { result, domain: mailFrom.domain, record, source: stored ? 'redis' : 'default' }
      }
    } catch (err) {
      notes.push(`last-resort SPF for ${mailFrom.domain} not evaluated: ${(err as Error).message} (the plugin would go on without it)`)
    }
  }
  // txnSpf: the guess stands in for SPF "none".
  if (session.guess && (!spf || spf.result === 'none')) session.spf = { result: session.guess.result, domain: session.guess.domain, guess: true }
  const g = cfg.policy.green
  if (g.fcrdns || g.hostGreen || g.asn) session.signals = await deps.peerSignals(ipv6, f.helo)
  return session
}

async function lookup(store: Pick<ListStore, 'lookup'>, req: LookupRequest, errors: string[]): Promise<LookupReply | null> {
  if (isEmptyRequest(req)) return {}
  try {
    return await store.lookup(req)
  } catch (err) {
    errors.push(`list lookup failed (${(err as Error).name}: ${(err as Error).message})`)
    return null
  }
}

/** mx6_rcpt for each recipient, then mx6_data_post for those not deferred at RCPT. */
async function evaluate(f: ExplainFacts, s: Session, cfg: ReceiveConfig, store: Pick<ListStore, 'lookup'>): Promise<Evaluation> {
  const ipv6 = s.ipv6!
  const errors: string[] = []
  const known: Known = {}
  let peerGreenBasis: GreenBasis | null = null
  const states = new Map<string, RecipientState>()
  const accepted: string[] = []
  const rcpts: RcptOutcome[] = []
  for (const addr of f.rcpts.length ? f.rcpts : [null]) {
    const facts: RcptFacts = {
      ipv6,
      mx6: s.mx6,
      spf: s.spf,
      mailFrom: s.mailFrom,
      rcpt: addr ? mailbox(addr, cfg.recipientDelimiter) : null,
      peerSignals: s.signals,
      now: f.now,
    }
    const reply = await lookup(store, planRcpt(facts, known, cfg.policy), errors)
    if (reply) rememberAnswers(known, reply)
    const d = decideRcpt(facts, reply && { ...known, ...reply }, cfg.policy)
    if (reply && !peerGreenBasis) peerGreenBasis = peerGreen(ipv6, s.signals, { ...known, ...reply }, cfg.policy.green)
    const id = addr ? rcptId(addr) : ''
    states.set(id, { rcpt: facts.rcpt, prior: d })
    rcpts.push({ given: addr ? `${addr.user}@${addr.host}` : '', mailbox: facts.rcpt, decision: observed(d, cfg.mode) })
    // A deferred recipient is not in txn.rcpt_to after RCPT (in mode=observe it is).
    if (d.verdict !== 'defer' || cfg.mode === 'observe') accepted.push(id)
  }
  if (accepted.length === 0) {
    return { rcpts, data: null, dataFacts: null, final: rcpts[0].decision, phase: 'rcpt', storeErrors: errors }
  }
  const dataFacts: DataFacts = {
    mx6: s.mx6,
    peerGreen: peerGreenBasis,
    now: f.now,
    spf: s.spf,
    dkimPass: f.dkimPass,
    dkimFail: f.dkimFail,
    from: f.from,
    recipients: accepted.map((id) => states.get(id)!),
  }
  const reply = await lookup(store, planData(dataFacts, cfg.policy), errors)
  const decided = decideData(dataFacts, reply, cfg.policy)
  const data = { ...decided, message: observed(decided.message, cfg.mode) }
  return { rcpts, data, dataFacts, final: data.message, phase: 'data_post', storeErrors: errors }
}

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
      return `deferred ${when} with ${cfg.defer.code} ${cfg.defer.status} "${final.rule === 'auth-fail' ? cfg.defer.authFailText : cfg.defer.text}"${final.rule === 'store-error' ? ' (Redis trouble)' : ''}: the sender retries, at the IPv4 MX`
    case 'would-defer':
    case 'would-fallback':
      return `mode=observe: ${final.verdict} (${final.rule}), recorded only; the message is accepted as if mx6-receive were not there (mode=enforce would ${final.verdict === 'would-defer' ? `defer it with ${cfg.defer.code} ${cfg.defer.status}` : `answer ${cfg.mx6.code} ${cfg.mx6.status}`})`
    default:
      return `${final.verdict} (${final.rule})`
  }
}

function authText(d: string, spf: SpfFact | null, dkim: string[]): string {
  const how: string[] = []
  if (spf?.result === 'pass' && canonicalDomain(spf.domain) === d) how.push(spf.guess ? 'last-resort SPF pass' : 'SPF pass')
  if (dkim.includes(d)) how.push('DKIM pass')
  return how.join(' and ') || 'authenticated'
}

/** Explains one transaction: the plugin's decisions, then verified suggestions. */
export async function explain(f: ExplainFacts, deps: ExplainDeps): Promise<Explanation> {
  const cfg = deps.cfg
  const peer = classifyPeer(f.ip)
  const s = await prepare(f, deps)
  const fromText = 'mailbox' in f.from ? f.from.mailbox.address : `no usable From (${f.from.problem})`
  const authFacts: DataFacts = { mx6: s.mx6, peerGreen: null, now: f.now, spf: s.spf, dkimPass: f.dkimPass, dkimFail: f.dkimFail, from: f.from, recipients: [] }
  const authd = alignedDomains(authFacts, cfg.policy.alignment)
  const out: Explanation = {
    peer: { given: f.ip, canonical: peer?.canonical ?? null, family: peer?.family ?? null, private: deps.isPrivate(f.ip) },
    helo: f.helo,
    mx6: s.mx6,
    listener: f.listener ? `[${f.listener.ip}]:${f.listener.port}` : null,
    mailFrom: s.mailFrom?.address ?? (f.mailFrom ? `unusable (${printable(`${f.mailFrom.user}@${f.mailFrom.host}`, 80)})` : null),
    spf: s.spf,
    spfAssumed: !f.spf.given,
    guess: s.guess,
    from: fromText,
    alignedDomains: authd,
    dkimPass: f.dkimPass,
    dkimFail: f.dkimFail,
    authFailure: dataFailure(authFacts, cfg.policy),
    mode: cfg.mode,
    peerSignals: s.signals ?? null,
    skip: s.skip,
    rcpts: [],
    data: null,
    final: s.skip ?? { verdict: 'skip', rule: 'none', final: true, reason: '' },
    phase: 'screen',
    result: '',
    changes: [],
    notes: [...s.notes],
    storeErrors: [],
  }
  if (s.skip) {
    out.result = resultLine(cfg, s.skip, 'screen')
    if (s.skip.rule === 'ipv4') out.notes.push('mx6-receive does not act on IPv4 peers (IPv4-mapped IPv6 included): no list entry, SPF or DKIM result changes that')
    else if (s.skip.rule === 'private') out.notes.push('a private IPv6 peer (loopback, ULA, link-local or an address of this host) is skipped while skip_private=true; with skip_private=false the policy would apply')
    else out.notes.push(`skipped (${s.skip.rule}): ${s.skip.reason}`)
    return out
  }
  const ev = await evaluate(f, s, cfg, deps.store)
  Object.assign(out, { rcpts: ev.rcpts, data: ev.data?.message ?? null, final: ev.final, phase: ev.phase, storeErrors: ev.storeErrors })
  out.result = resultLine(cfg, ev.final, ev.phase)
  if (ev.storeErrors.length) {
    out.notes.push('Redis trouble: the plugin defers every IPv6 peer until the store answers again; no list entry changes that')
    return out
  }
  if (ev.phase === 'rcpt') out.notes.push('every recipient was deferred at RCPT, so the message body is never sent over IPv6')
  if (s.mx6) out.notes.push(`MX6 session: nothing is refused at RCPT; without a basis the sender gets ${cfg.mx6.code} ${cfg.mx6.status} after DATA`)
  else if (cfg.mx6.listeners.length && !f.listener) out.notes.push(`not an MX6 session (give --listener to explain a connection to an MX6 listener: ${cfg.mx6.listeners.map((l) => l.ip).join(', ')})`)

  if (ev.final.verdict === 'trusted') {
    out.notes.push('already trusted: nothing to change')
    return out
  }
  await suggest(f, s, deps, ev, authd, out)
  notesWhyNot(f, s, cfg, authd, out)
  return out
}

/** Candidate entries, each checked by deciding again with it added. */
async function suggest(f: ExplainFacts, s: Session, deps: ExplainDeps, ev: Evaluation, authd: readonly string[], out: Explanation): Promise<void> {
  const cfg = deps.cfg
  const ipv6 = s.ipv6!
  const works = async (add: Additions): Promise<Evaluation> => evaluate(f, s, cfg, new OverlayStore(deps.store, add))
  const candidates: Array<{ add: Additions; change: Change; whyNot: (e: Evaluation) => string }> = []

  const p64 = candidatePrefixes(ipv6)[128 - 64]
  candidates.push({
    add: { ipAllow: [p64] },
    change: { verdict: 'trusted', commands: [`mx6ctl allow ip add ${p64}`], effect: `trusted by ip:allow at RCPT for every peer in ${p64} (only this peer: mx6ctl allow ip add ${ipv6})` },
    whyNot: (e) => `ip:allow ${p64}: ${e.final.reason}`,
  })

  for (const d of authd) {
    candidates.push({
      add: { domainAllow: [d] },
      change: { verdict: 'trusted', commands: [`mx6ctl allow domain add ${d}`], effect: `trusted by domain:allow: ${d} has ${authText(d, s.spf, f.dkimPass)} and is ${cfg.policy.alignment}-aligned with the From domain` },
      whyNot: (e) =>
        cfg.policy.undecided === 'defer' && !s.mx6 && e.phase === 'rcpt'
          ? `domain:allow ${d} would not help: with undecided=defer only an SPF-authenticated MAIL FROM domain counts at RCPT, and without it the message never reaches DATA over IPv6`
          : `domain:allow ${d} would not help: ${e.final.reason}`,
    })
  }

  // The sender to put in the books: the authenticated From (after DATA), else the SPF-authenticated envelope sender (at RCPT).
  const spfDomain = s.spf?.result === 'pass' ? canonicalDomain(s.spf.domain) : null
  let sender: { address: string; how: string } | null = null
  if (authd.length && 'mailbox' in f.from) sender = { address: f.from.mailbox.address, how: `the From address, authenticated via ${authd.join(',')}` }
  else if (spfDomain && s.mailFrom && s.mailFrom.domain === spfDomain) sender = { address: s.mailFrom.address, how: `the MAIL FROM address, with ${s.spf?.guess ? 'last-resort ' : ''}SPF pass` }
  const lastDecision = (i: number): Decision => {
    const r = ev.rcpts[i]
    if (r.decision.verdict === 'defer' || !ev.data || !ev.dataFacts) return r.decision
    const j = ev.dataFacts.recipients.findIndex((x) => x.rcpt === r.mailbox)
    return j >= 0 ? ev.data.recipients[j] : r.decision
  }
  const owners = [...new Set(ev.rcpts.map((r, i) => (r.mailbox && lastDecision(i).verdict !== 'trusted' ? r.mailbox.address : null)).filter((o): o is string => !!o))]
  if (sender && owners.length) {
    const snd = sender
    candidates.push({
      add: { books: owners.map((owner) => ({ owner, member: snd.address })) },
      change: {
        verdict: 'trusted',
        commands: owners.map((owner) => `mx6ctl book add ${owner} ${snd.address}`),
        effect: `trusted by book: ${snd.address} (${snd.how}) in the address book of ${owners.length > 1 ? 'each recipient' : owners[0]}`,
      },
      whyNot: (e) => `book entries would not help: ${e.final.reason}`,
    })
  }

  // Weaker: greenlisting entries for what DNS says about the peer (only while there is no basis at all).
  const sig = s.signals
  const g = cfg.policy.green
  if (ev.final.verdict !== 'green' && sig) {
    const name = sig.fcrdns.confirmed[0]
    if (g.hostGreen && name) {
      candidates.push({
        add: { hostGreen: [name] },
        change: { verdict: 'green', commands: [`mx6ctl green host add ${name}`], effect: `green by host:green: ${name} is the peer's forward-confirmed name (content filters still apply)` },
        whyNot: () => '',
      })
    }
    const asn = sig.asn.asns[0]
    if (g.asn && asn) {
      candidates.push({
        add: { asnGreen: [asn] },
        change: { verdict: 'green', commands: [`mx6ctl green asn add ${asn}`], effect: `green by asn:green: the peer's origin AS ${asn} (content filters still apply)` },
        whyNot: () => '',
      })
    }
  }

  for (const c of candidates) {
    const e = await works(c.add)
    if (e.storeErrors.length) continue
    const ok = c.change.verdict === 'trusted' ? e.final.verdict === 'trusted' : e.final.verdict === 'trusted' || e.final.verdict === 'green'
    if (ok) out.changes.push(c.change)
    else if (c.whyNot(e)) out.notes.push(c.whyNot(e))
  }
  if (!sender && ev.rcpts.some((r) => r.mailbox)) {
    out.notes.push('no address-book entry can apply: the book rules need an SPF-authenticated MAIL FROM (its own domain) or an authenticated, aligned From address')
  } else if (sender && ev.rcpts.every((r) => !r.mailbox)) {
    out.notes.push('give --rcpt to see the address-book entries that would apply')
  }
}

/** Why the domain rules, and the weaker signals, did not apply. */
function notesWhyNot(f: ExplainFacts, s: Session, cfg: ReceiveConfig, authd: readonly string[], out: Explanation): void {
  const spf = s.spf
  const spfText = spf ? `spf=${spf.result}${spf.domain ? ` ${printable(spf.domain)}` : ''}${spf.guess ? ' (last-resort guess)' : ''}` : 'no SPF result (null sender)'
  if (!('mailbox' in f.from)) {
    out.notes.push(`no usable From (${f.from.problem}): no domain or From-address rule can apply; only ip:allow, a peer green rule, or the SPF-authenticated envelope sender in the recipient's book at RCPT can`)
  } else if (authd.length === 0) {
    const fd = f.from.mailbox.domain
    const rel = cfg.policy.alignment === 'relaxed' ? `a domain with the same organizational domain ${orgDomain(fd)}` : 'exactly that domain (alignment=strict)'
    const spfMisaligned = spf?.result === 'pass' && spf.domain && canonicalDomain(spf.domain) && !aligned(canonicalDomain(spf.domain)!, fd, cfg.policy.alignment)
    out.notes.push(
      `no domain rule can apply: the From domain ${fd} is not authenticated: it needs a DKIM pass for ${rel} (have: dkim pass=${f.dkimPass.join(',') || 'none'}), ` +
        `or an SPF pass for an aligned MAIL FROM domain (have: ${spfText}${spfMisaligned ? `, not aligned with ${fd}` : ''})`,
    )
  }
  if (out.spfAssumed && s.mailFrom) {
    out.notes.push(`SPF: explain cannot evaluate SPF without the peer's session and assumed "none"${s.guess ? ' (then applied the last-resort record)' : ''}; give --spf with the result Haraka's spf plugin logged`)
  }
  const sig = s.signals
  if (sig && cfg.policy.green.fcrdns) {
    if (sig.fcrdns.outcome === 'fail' && sig.fcrdns.confirmed.length) out.notes.push(`FCrDNS: ${sig.fcrdns.detail}: with HELO ${sig.fcrdns.confirmed[0]} the fcrdns green rule would apply`)
    else if (sig.fcrdns.outcome === 'err') out.notes.push(`FCrDNS: ${sig.fcrdns.detail}: DNS trouble counts as no signal`)
  }
}
