// One SMTP transaction's decisions, in the order mx6-receive takes them. The plugin's hooks
// and mx6ctl explain both run this over their own Sources, so explain shows exactly what
// the plugin decides. I/O stays behind Sources; the decisions are decide*.ts.
import type { Mailbox } from '../lib/mailbox'
import type { ListCache, ListStore, LookupReply, LookupRequest } from '../lib/store'
import { isEmptyRequest } from '../lib/store'
import { spfFailure } from './auth'
import type { ReceiveConfig } from './config'
import { acceptedTogether, decideRcpt, observed, overriding, planRcpt, screenPeer, spfPassDomain, trustedPeer, withAnswers, type Decision, type Known, type PeerFacts, type RcptFacts, type Screen, type SpfFact } from './decide'
import { authenticatedDomains, dataDomains, decideData, planData, type AuthFacts, type DataFacts, type FromFact, type RecipientState } from './decide-data'
import { greenSummary, peerGreen, planPeerGreen, type GreenBasis } from './green'
import { canonicalDomain } from '../lib/domain'
import type { ArcOutcome } from './arc'
import type { DmarcInput, DmarcOutcome } from './dmarc'
import type { PeerSignals } from './peer-signals'
import type { ZoneResult } from './reputation'
import type { GuessResult } from './spf-guess'

/** Where a session's facts come from. */
export interface Sources {
  store: Pick<ListStore, 'lookup' | 'spfGuess'>
  /** The peer list cache, when there is one: answers without a round trip. */
  cache?: ListCache
  /** The peer's DNS signals with this session's HELO applied; undefined when every DNS signal is off. Never rejects. */
  peerSignals(ipv6: string): Promise<PeerSignals | undefined>
  /** Evaluates a last-resort SPF record (spf-guess.ts). */
  evaluateGuess(ip: string, domain: string, mailFrom: string, helo: string, record: string, timeoutMs: number): Promise<string>
  /** The From domain's DMARC (dmarc.ts through the resolver); without it DMARC is not evaluated. */
  evaluateDmarc?(input: DmarcInput): Promise<DmarcOutcome>
  /** The provider domain zones' answers for authenticated domains; absent when none is configured. Never rejects. */
  domainZones?(domains: readonly string[]): Promise<ZoneResult[]>
  /** Unix seconds. */
  now(): number
  /** What happened on the way, for the log and the results. */
  report?(event: SessionEvent): void
}

export type SessionEvent =
  | { kind: 'guess'; guess: GuessResult }
  | { kind: 'guess-error'; domain: string; message: string }
  | { kind: 'store-error'; name: string; message: string }
  | { kind: 'store-ok' }

/** What the transaction says by its first RCPT. */
export interface Envelope {
  peer: PeerFacts
  /** The peer connected to an MX6 listener: it promised to understand the fallback reply. */
  mx6: boolean
  helo: string
  /** haraka-plugin-spf's MAIL FROM result. */
  spf: SpfFact | null
  mailFrom: Mailbox | null
}

/** The message after DATA. */
export interface Message {
  /** rcpt_to: each recipient by the object its RCPT hook was given (`key`), and its mailbox. */
  recipients: Array<{ key: object; id: string; rcpt: Mailbox | null }>
  dkimPass: string[]
  dkimFail: string[]
  /** The From header, read only when a recipient is still open. */
  from(): FromFact
  /** The message's ARC chain (arc.ts), null without ARC headers; without it ARC is not evaluated. */
  arc?(fromDomain: string): Promise<ArcOutcome | null>
}

export interface Outcome {
  /** The decision as recorded: observed() in mode=observe. */
  decision: Decision
  /** What the core decided (what the reply follows in mode=enforce). */
  core: Decision
  /** The peer signals it consulted, for the log line. */
  signals?: PeerSignals
  /** More results fields (which green lists were asked). */
  extra?: Record<string, string>
  /** A verdict already recorded at RCPT, repeated after DATA. */
  repeat?: boolean
  /** The authenticated, aligned From domain, if any (for the follow-up record). */
  authDomain?: string
  /** DMARC and ARC as evaluated after DATA, for the log line, the results and Authentication-Results. */
  dmarc?: DmarcOutcome | null
  arc?: ArcOutcome | null
  /** The provider domain zones asked about the authenticated domains, for the log line and the results. */
  domainZones?: readonly ZoneResult[]
}

const STORE_OK: SessionEvent = Object.freeze({ kind: 'store-ok' })
const NOT_NEEDED: AuthFacts = Object.freeze({ spf: null, dkimPass: [], dkimFail: [], from: { problem: 'not needed: every recipient was decided at rcpt' } })

export class Session {
  readonly screen: Screen
  private known: Known = {}
  /** What RCPT decided per recipient, by the object its hook was given. */
  private readonly recipients = new Map<object, RecipientState & { id: string }>()
  /** The peer-level green basis found so far: a basis for every recipient after DATA. */
  private peerGreen: GreenBasis | null = null
  private guessing?: Promise<void>
  private guess: GuessResult | null = null
  private signals?: Promise<PeerSignals | undefined>

  constructor(
    private readonly cfg: ReceiveConfig,
    private readonly sources: Sources,
    private readonly env: Envelope,
  ) {
    this.screen = screenPeer(env.peer, cfg.policy)
  }

  /** The decision for one recipient (the screen's skip for a peer left alone). */
  async rcpt(key: object, id: string, rcpt: Mailbox | null): Promise<Outcome> {
    if ('skip' in this.screen) return this.outcome(this.screen.skip)
    const ipv6 = this.screen.ipv6
    const policy = this.cfg.policy
    // 1. An allow-listed peer (the list cache knows it, or an earlier RCPT asked) is trusted
    //    for every recipient, whatever SPF, the sender or DNS say: nothing else is read.
    const cached = this.known.ipAllow === undefined ? this.sources.cache?.peer(ipv6, policy.green.ipGreen) : undefined
    if (cached) this.known = withAnswers(this.known, cached)
    if (this.known.ipAllow) return this.settle(key, id, rcpt, overriding(trustedPeer(ipv6, this.known.ipAllow), spfFailure(this.env.spf, policy.auth)))
    // 2. Last-resort SPF for a MAIL FROM domain that publishes none.
    await this.lastResortSpf()
    // 3. The peer's DNS signals, only when RCPT decides for good (undecided=defer on a plain
    //    listener); otherwise they are applied after DATA.
    const final = policy.undecided === 'defer' && !this.env.mx6
    const signals = final ? await this.peerSignals() : undefined
    // 4. Plan, look up (one round trip), decide.
    const facts: RcptFacts = { ipv6, mx6: this.env.mx6, spf: this.spfResult(), mailFrom: this.env.mailFrom, rcpt, peerSignals: signals, now: this.sources.now() }
    const reply = await this.lookup(planRcpt(facts, this.known, policy))
    if (reply) this.known = withAnswers(this.known, reply)
    // DNS signals serve only a peer on neither ip:allow nor ip:green: started now, done long before DATA ends.
    if (reply && !this.known.ipAllow && !this.known.ipGreen) void this.peerSignals()
    const answers: (Known & LookupReply) | null = reply && withAnswers(this.known, reply)
    if (answers) answers.books = reply?.books
    // 5. A provider's domain zone, for the SPF-authenticated domain no operator entry decides.
    const spfDomain = final && answers && !answers.ipAllow && !answers.domainAllow && !answers.books?.[0] ? spfPassDomain(facts.spf) : null
    if (spfDomain && this.sources.domainZones) facts.domainZones = await this.sources.domainZones([spfDomain])
    const d = decideRcpt(facts, answers, policy)
    if (answers && !answers.ipAllow) this.peerGreen ??= peerGreen(ipv6, signals, answers, policy.green)
    // An ip:allow hit consults no green list; a pending recipient is not a decision yet.
    const extra = answers && !answers.ipAllow && d.verdict !== 'pending' ? { green_signals: greenSummary(this.known) } : undefined
    return this.settle(key, id, rcpt, d, { signals, extra, domainZones: facts.domainZones })
  }

  /** The decision for the message after DATA: one reply for all its recipients. */
  async data(msg: Message): Promise<Outcome> {
    if ('skip' in this.screen) return this.outcome(this.screen.skip)
    const ipv6 = this.screen.ipv6
    const policy = this.cfg.policy
    // A recipient RCPT did not see (e.g. the plugin was reloaded between) is undecided, never trusted.
    const recipients = msg.recipients.map((r) => this.recipientState(r) ?? { rcpt: r.rcpt, prior: { verdict: 'pending', rule: 'none', final: false, reason: 'not seen at rcpt' } as Decision })
    // 1. Every recipient settled at RCPT: their verdict, unless a DKIM signature failed
    //    (it may take away a basis RCPT settled).
    const open = msg.dkimFail.length > 0 || recipients.some((r) => !r.prior.final)
    if (!open) {
      const message = acceptedTogether(recipients.map((r) => r.prior)) ?? decideData(this.dataFacts(recipients, null), {}, policy).message
      return this.outcome(message, { repeat: true })
    }
    // 2. The From domain's authentication: SPF and DKIM as the plugins found them, DMARC, ARC.
    let facts = this.dataFacts(recipients, await this.authenticate(msg))
    const authDomain = facts.aligned.length && 'mailbox' in facts.from ? facts.from.mailbox.domain : ''
    const auth = { dmarc: facts.dmarc, arc: facts.arc }
    // 3. A From authenticated on its own (not through an ARC sealer, which only the round
    //    trip can find trusted) whose domain the list cache knows in domain:allow decides
    //    every open recipient, before any other lookup or DNS wait.
    const eligible = dataDomains(facts, policy)
    const listed = eligible && facts.aligned.length > 0 && this.sources.cache?.domainAllow(eligible.candidates)
    if (listed) return this.outcome(decideData(facts, { domainAllow: listed }, policy).message, { authDomain, ...auth })
    // 4. One round trip: the message's lookups and, for a peer not yet green, the DNS-based
    //    green lists; meanwhile the providers' domain zones for the authenticated domains.
    const req = planData(facts, policy, eligible)
    const zones = eligible && facts.aligned.length > 0 && this.sources.domainZones ? this.sources.domainZones([...new Set(eligible.domains)]) : undefined
    const signals = this.peerGreen ? undefined : await this.peerSignals()
    if (signals) Object.assign(req, planPeerGreen(ipv6, signals, this.known, policy.green))
    const reply = await this.lookup(req)
    if (zones) facts = { ...facts, domainZones: await zones }
    if (reply && signals) {
      this.known = withAnswers(this.known, reply)
      facts = this.dataFacts(recipients, facts, peerGreen(ipv6, signals, this.known, policy.green))
    }
    const extra = reply && signals ? { green_signals: greenSummary(this.known) } : undefined
    return this.outcome(decideData(facts, reply, policy).message, { signals, extra, authDomain, domainZones: facts.domainZones, ...auth })
  }

  /**
   * What authenticates the From: SPF (a last-resort guess does not count for DMARC, which is
   * about published records), DKIM, the From domain's DMARC, and, for a From nothing of that
   * authenticates, its ARC chain (RFC 8617: forwarded mail).
   */
  private async authenticate(msg: Message): Promise<AuthFacts> {
    const spf = this.spfResult()
    const from = msg.from()
    const auth: AuthFacts = { spf, dkimPass: msg.dkimPass, dkimFail: msg.dkimFail, from }
    const fromDomain = 'mailbox' in from ? from.mailbox.domain : null
    const cfg = this.cfg.policy.auth
    if (fromDomain && cfg.dmarc && this.sources.evaluateDmarc) {
      const spfPassDomain = spf?.result === 'pass' && !spf.guess ? canonicalDomain(spf.domain) : null
      auth.dmarc = await this.sources.evaluateDmarc({ fromDomain, spfPassDomain, dkimPassDomains: msg.dkimPass })
    }
    if (fromDomain && cfg.arc && msg.arc && authenticatedDomains(auth, this.cfg.policy.alignment).length === 0) auth.arc = await msg.arc(fromDomain)
    return auth
  }

  /** The facts after DATA; `auth` null when no recipient is open (nothing to authenticate). */
  private dataFacts(recipients: RecipientState[], auth: AuthFacts | DataFacts | null, peerGreen = this.peerGreen): DataFacts {
    const a = auth ?? NOT_NEEDED
    // Written out, not spread: a spread of varying shapes costs V8 microseconds per message.
    return {
      spf: a.spf,
      dkimPass: a.dkimPass,
      dkimFail: a.dkimFail,
      from: a.from,
      dmarc: a.dmarc,
      arc: a.arc,
      domainZones: a.domainZones,
      mx6: this.env.mx6,
      peerGreen,
      now: this.sources.now(),
      recipients,
      aligned: !auth ? [] : 'aligned' in auth ? auth.aligned : authenticatedDomains(auth, this.cfg.policy.alignment),
    }
  }

  /** Keeps a recipient's RCPT decision for DATA. */
  private settle(key: object, id: string, rcpt: Mailbox | null, d: Decision, more?: Partial<Outcome>): Outcome {
    this.recipients.set(key, { id, rcpt, prior: d })
    return this.outcome(d, more)
  }

  /** By the object RCPT was given, else (one a later plugin made) the last RCPT of the same address. */
  private recipientState(r: Message['recipients'][number]): RecipientState | undefined {
    const same = this.recipients.get(r.key)
    if (same) return same
    let found: RecipientState | undefined
    for (const s of this.recipients.values()) if (s.id === r.id) found = s
    return found
  }

  private outcome(core: Decision, more?: Partial<Outcome>): Outcome {
    return { decision: observed(core, this.cfg.mode), core, signals: more?.signals, extra: more?.extra, repeat: more?.repeat, authDomain: more?.authDomain, dmarc: more?.dmarc, arc: more?.arc, domainZones: more?.domainZones }
  }

  /** SPF as haraka-plugin-spf found it, or the last-resort guess when the domain publishes none. */
  spfResult(): SpfFact | null {
    const spf = this.env.spf
    const g = this.guess
    return g && (!spf || spf.result === 'none') ? { result: g.result, domain: g.domain, guess: true } : spf
  }

  private lastResortSpf(): Promise<void> {
    this.guessing ??= this.evaluateGuess()
    return this.guessing
  }

  /** Never fails: a guess that cannot be evaluated is reported and left out. */
  private async evaluateGuess(): Promise<void> {
    const g = this.cfg.spfGuess
    const from = this.env.mailFrom
    if (!g.enabled || this.env.spf?.result !== 'none' || !from || 'skip' in this.screen) return
    try {
      const stored = await this.sources.store.spfGuess(from.domain)
      const record = stored ?? g.defaultRecord
      if (!record) return
      const result = await this.sources.evaluateGuess(this.screen.ipv6, from.domain, from.address, this.env.helo, record, this.cfg.signals.dnsTimeoutMs)
      this.guess = { result, domain: from.domain, record, source: stored ? 'redis' : 'default' }
      this.sources.report?.({ kind: 'guess', guess: this.guess })
    } catch (err) {
      this.sources.report?.({ kind: 'guess-error', domain: from.domain, message: (err as Error).message })
    }
  }

  /** The peer's DNS signals, asked once per session (the source keeps them per connection). */
  private peerSignals(): Promise<PeerSignals | undefined> {
    if ('skip' in this.screen) return Promise.resolve(undefined)
    this.signals ??= this.sources.peerSignals(this.screen.ipv6).catch(() => undefined)
    return this.signals
  }

  /** One round trip; null when the store failed (an IPv6 peer then gets a 4xx, never an accept). */
  private async lookup(req: LookupRequest): Promise<LookupReply | null> {
    if (isEmptyRequest(req)) return {}
    try {
      const reply = await this.sources.store.lookup(req)
      this.sources.report?.(STORE_OK)
      return reply
    } catch (err) {
      this.sources.report?.({ kind: 'store-error', name: (err as Error).name, message: (err as Error).message })
      return null
    }
  }
}
