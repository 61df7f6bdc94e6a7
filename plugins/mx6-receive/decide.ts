// The decision core of mx6-receive: pure functions, no Haraka, no Redis, no DNS.
//
// The glue gathers facts, asks plan*() what to look up, does that in one Redis
// round trip, and hands the answers to decide*(). Every decision carries the
// rule that made it and a human-readable reason, so logs and results explain it.
import { aligned, allCandidates, canonicalDomain, domainCandidates, type Alignment } from '../lib/domain'
import { candidatePrefixes, classifyPeer } from '../lib/ip'
import { memo } from '../lib/memo'
import type { Mailbox } from '../lib/mailbox'
import type { Hit, LookupReply, LookupRequest } from '../lib/store'
import { domainGreen, peerGreen, planDomainGreen, planPeerGreen, type GreenBasis, type GreenConfig, type GreenRule } from './green'
import type { PeerSignals } from './peer-signals'
import { canOverride, dkimFailure, isAutomatic, overrideText, spfFailure, type AuthConfig } from './auth'

/**
 * trusted: a whitelist basis; content spam filters are skipped (never the malware scan).
 * green: a weaker (greenlisting) basis; accepted subject to every content filter.
 * fallback: the MX6 "retry over IPv4" reply, only on an MX6 listener after DATA.
 * would-defer, would-fallback: what defer and fallback become in mode=observe (see observed).
 */
export type Verdict = 'skip' | 'trusted' | 'green' | 'pending' | 'defer' | 'fallback' | 'would-defer' | 'would-fallback'

export type Rule =
  | 'ipv4'
  | 'relaying'
  | 'auth'
  | 'private'
  | 'bad-peer'
  | 'ip:allow'
  | 'book'
  | 'domain:allow'
  | GreenRule
  | 'none'
  | 'auth-fail'
  | 'store-error'

export interface Decision {
  verdict: Verdict
  rule: Rule
  /** A decision that data_post need not look at again. */
  final: boolean
  reason: string
  /** The list entry behind an accept, when a list decided it. */
  entry?: string
  /** Set when an operator's list entry accepted the message although authentication failed. */
  override?: string
}

export interface PolicyConfig {
  /** Leave loopback, ULA and link-local IPv6 peers alone. */
  skipPrivate: boolean
  /** What rcpt does with a recipient that has no basis yet. */
  undecided: 'wait' | 'defer'
  alignment: Alignment
  green: GreenConfig
  auth: AuthConfig
}

export interface PeerFacts {
  ip: string
  /** As Haraka computed it (loopback, ULA, link-local, or an address of this host). */
  private: boolean
  relaying: boolean
  authenticated: boolean
}

export type Screen = { skip: Decision } | { ipv6: string }

/** The same few IPv4 peers come again and again: their (immutable) screen is made once. */
const ipv4Skip = memo(4096, (canonical: string): Screen => Object.freeze({ skip: Object.freeze({ verdict: 'skip', rule: 'ipv4', final: true, reason: `IPv4 peer ${canonical}` }) }))

/** The screens that carry nothing of the peer: one (immutable) object each. */
const RELAYING: Screen = Object.freeze({ skip: Object.freeze<Decision>({ verdict: 'skip', rule: 'relaying', final: true, reason: 'relaying client' }) })
const AUTHENTICATED: Screen = Object.freeze({ skip: Object.freeze<Decision>({ verdict: 'skip', rule: 'auth', final: true, reason: 'authenticated client' }) })

/** IPv4 and our own users are never touched; only public IPv6 peers get the policy. */
export function screenPeer(p: PeerFacts, cfg: PolicyConfig): Screen {
  const skip = (rule: Rule, reason: string): Screen => ({ skip: { verdict: 'skip', rule, final: true, reason } })
  if (p.relaying) return RELAYING
  if (p.authenticated) return AUTHENTICATED
  const peer = classifyPeer(p.ip)
  if (!peer) return skip('bad-peer', `peer address "${printable(p.ip)}" not parseable`)
  if (peer.family === 'ipv4') return ipv4Skip(peer.canonical)
  if (p.private && cfg.skipPrivate) return skip('private', `private IPv6 peer ${peer.canonical} (skip_private)`)
  return { ipv6: peer.canonical }
}

export interface SpfFact {
  /** RFC 7208 result, lower case: pass, fail, softfail, neutral, none, temperror, permerror. */
  result: string
  /** The domain SPF evaluated (MAIL FROM domain). */
  domain: string | null
  /** The result comes from a last-resort record, the domain publishes none. */
  guess?: boolean
}

export interface RcptFacts {
  ipv6: string
  /** The peer connected to an MX6 listener address: it promised to understand the fallback reply. */
  mx6: boolean
  spf: SpfFact | null
  mailFrom: Mailbox | null
  rcpt: Mailbox | null
  /** DNS-based facts about the peer (FCrDNS, origin AS), gathered once per connection. */
  peerSignals?: PeerSignals
  /** Unix seconds, for the history thresholds. */
  now: number
}

/** Lookups already answered earlier in the same transaction (per-transaction cache). */
export type Known = Omit<LookupReply, 'books'>

/**
 * Keeps the answers of a reply that depend only on the peer and the envelope (every field
 * of Known) for the rest of the transaction.
 */
export function rememberAnswers(known: Known, reply: LookupReply): void {
  // Field by field, each a plain property read (a loop over the names would read every
  // field of every reply by a computed key).
  if (reply.ipAllow !== undefined) known.ipAllow = reply.ipAllow
  if (reply.domainAllow !== undefined) known.domainAllow = reply.domainAllow
  if (reply.ipGreen !== undefined) known.ipGreen = reply.ipGreen
  if (reply.hostGreen !== undefined) known.hostGreen = reply.hostGreen
  if (reply.asnGreen !== undefined) known.asnGreen = reply.asnGreen
  if (reply.domainGreen !== undefined) known.domainGreen = reply.domainGreen
  if (reply.history !== undefined) known.history = reply.history
}

function spfPassDomain(spf: SpfFact | null): string | null {
  return spf?.result === 'pass' ? canonicalDomain(spf.domain) : null
}

function bookMembers(sender: Mailbox): string[] {
  return [sender.address, ...domainCandidates(sender.domain).map((d) => `@${d}`)]
}

/** What rcpt must ask the store: the peer's prefixes, the SPF domain, the recipient's book. */
export function planRcpt(f: RcptFacts, known: Known, cfg: PolicyConfig): LookupRequest {
  const req: LookupRequest = {}
  if (known.ipAllow === undefined) req.ipCandidates = candidatePrefixes(f.ipv6)
  if (known.ipAllow) return req
  const spfDomain = spfPassDomain(f.spf)
  if (spfDomain && known.domainAllow === undefined) req.domainCandidates = domainCandidates(spfDomain)
  Object.assign(req, planPeerGreen(f.ipv6, f.peerSignals, known, cfg.green))
  if (spfDomain && known.domainGreen === undefined && known.history === undefined) Object.assign(req, planDomainGreen([spfDomain], cfg.green, req.domainCandidates))
  // The envelope sender counts only when SPF passed for its own domain.
  if (spfDomain && f.mailFrom && f.mailFrom.domain === spfDomain && f.rcpt) {
    req.books = [{ owner: f.rcpt.address, members: bookMembers(f.mailFrom) }]
  }
  return req
}

function hitText(h: Hit): string {
  return h.note ? `${h.entry} ("${printable(h.note)}")` : h.entry
}

/**
 * A peer in ip:allow: trusted for every recipient, whatever else the transaction says
 * (the first rule of decideRcpt, and all of it for such a peer).
 */
export function trustedPeer(ipv6: string, hit: Hit): Decision {
  return { verdict: 'trusted', rule: 'ip:allow', final: true, reason: `${ipv6} in ip:allow ${hitText(hit)}`, entry: hit.entry }
}

/**
 * trustedPeer for a hit that is kept and handed out again (the peer list cache's, which a
 * repeat peer brings every time): the decision, immutable, is made once per hit and peer
 * and kept as long as the hit is. (A hit of a fresh Redis reply is used once: trustedPeer.)
 */
export function trustedRepeatPeer(ipv6: string, hit: Hit): Decision {
  const last = trustedByHit.get(hit)
  if (last?.ipv6 === ipv6) return last.decision
  const decision = Object.freeze(trustedPeer(ipv6, hit))
  trustedByHit.set(hit, { ipv6, decision })
  return decision
}

/** The last decision trustedRepeatPeer made for a hit, and for which peer (see there). */
const trustedByHit = new WeakMap<Hit, { ipv6: string; decision: Decision }>()

/**
 * `d`, accepted by an operator's own list entry although authentication failed: its reason
 * and results say which failure which entry overrode (see auth.ts).
 */
export function overriding(d: Decision, failure: string | null): Decision {
  if (!failure || d.override) return d
  const override = overrideText(failure, d.entry ? `${d.rule} ${d.entry}` : d.rule)
  return { ...d, reason: `${d.reason}; ${override}`, override }
}

/** A green basis as a decision, overriding `failure` when there is one (never vetoed here). */
function greenDecision(b: GreenBasis, failure: string | null, reason = b.reason): Decision {
  return overriding({ verdict: 'green', rule: b.rule, final: true, reason, entry: b.entry }, failure)
}

/** `answers` is null when the store failed: an IPv6 peer then gets a 4xx, never an accept. */
export function decideRcpt(f: RcptFacts, answers: (Known & LookupReply) | null, cfg: PolicyConfig): Decision {
  if (!answers) return { verdict: 'defer', rule: 'store-error', final: true, reason: 'list store unavailable' }
  const failure = spfFailure(f.spf, cfg.auth)
  if (answers.ipAllow) return overriding(trustedPeer(f.ipv6, answers.ipAllow), failure)
  // The book and domain rules need an SPF pass: no SPF failure can stand beside them here.
  // What a last-resort guess authenticated is looked at again after DATA (a failing
  // DKIM signature of the From domain vetoes the guess).
  const member = answers.books?.[0]
  if (member && f.rcpt && f.mailFrom) {
    return {
      verdict: 'trusted',
      rule: 'book',
      final: !f.spf?.guess,
      reason: `SPF-authenticated sender ${f.mailFrom.address} matches ${member} in the book of ${f.rcpt.address}`,
    }
  }
  if (answers.domainAllow) {
    return {
      verdict: 'trusted',
      rule: 'domain:allow',
      final: false,
      reason: `SPF pass for ${spfPassDomain(f.spf)} in domain:allow ${hitText(answers.domainAllow)}; From alignment checked after DATA`,
    }
  }
  const pg = peerGreen(f.ipv6, f.peerSignals, answers, cfg.green)
  const vetoed = failure && pg && isAutomatic(pg.rule) ? pg : null
  if (pg && !vetoed) return greenDecision(pg, failure)
  const dg = spfPassDomain(f.spf) ? domainGreen(answers, f.now, cfg.green) : null
  if (dg) return { verdict: 'green', rule: dg.rule, final: false, reason: `${dg.reason} (SPF); From alignment checked after DATA` }
  const why = failure
    ? `failed authentication at rcpt (${failure})${vetoed ? `; ${vetoText(vetoed)}` : ''}`
    : `no basis at rcpt (spf=${f.spf?.result ?? 'none'}${f.spf?.domain ? ` ${printable(f.spf.domain)}` : ''})`
  // MX6 sessions are always decided after DATA, per the proposal.
  if (cfg.undecided === 'defer' && !f.mx6) return { verdict: 'defer', rule: failure ? 'auth-fail' : 'none', final: true, reason: why }
  return { verdict: 'pending', rule: 'none', final: false, reason: `${why}; waiting for DATA${f.mx6 ? ' (MX6 session)' : ''}` }
}

/** Why an automatic signal that held did not count. */
function vetoText(b: GreenBasis): string {
  return `${b.rule} does not count with failed authentication (${b.reason})`
}

export type FromFact = { mailbox: Mailbox } | { problem: string }

export interface RecipientState {
  rcpt: Mailbox | null
  /** What rcpt decided for this recipient. */
  prior: Decision
}

export interface DataFacts {
  mx6: boolean
  /** The peer-level greenlisting found for this peer, a basis for every recipient; null when none. */
  peerGreen: GreenBasis | null
  now: number
  spf: SpfFact | null
  dkimPass: string[]
  /** d= of the DKIM signatures that failed verification. */
  dkimFail: string[]
  from: FromFact
  recipients: RecipientState[]
  /** alignedDomains' answer for these facts, kept by its first call (see there). */
  aligned?: { mode: Alignment; domains: readonly string[] }
}

/** The message's failed authentication after DATA (SPF, the From domain's DKIM), or null. */
export function dataFailure(f: DataFacts, cfg: PolicyConfig): string | null {
  const spf = spfFailure(f.spf, cfg.auth)
  const dkim = 'mailbox' in f.from ? dkimFailure(f.from.mailbox.domain, f.dkimPass, f.dkimFail, cfg.alignment) : null
  return spf && dkim ? `${spf}, ${dkim}` : (spf ?? dkim)
}

/**
 * A recipient decided after DATA: one RCPT left open, or one whose basis from RCPT a
 * failure found after DATA takes away (a failing DKIM signature of the From domain).
 */
function needsCheck(r: RecipientState, failure: string | null): boolean {
  const v = r.prior.verdict
  if (!r.prior.final) return v === 'pending' || v === 'trusted' || v === 'green'
  return failure !== null && (v === 'trusted' || v === 'green') && !canOverride(r.prior.rule)
}

/**
 * The passing SPF and DKIM domains aligned with the From domain. Kept in the facts by the
 * first call for a mode (after DATA the hook asks up to three times per message: for the
 * lookups, the decision and the follow-up record); facts are not changed once made.
 */
export function alignedDomains(f: DataFacts, mode: Alignment): readonly string[] {
  const kept = f.aligned
  if (kept?.mode === mode) return kept.domains
  const domains = Object.freeze(findAligned(f, mode))
  f.aligned = { mode, domains }
  return domains
}

function findAligned(f: DataFacts, mode: Alignment): string[] {
  if (!('mailbox' in f.from)) return []
  const fromDomain = f.from.mailbox.domain
  // A last-resort SPF guess is an automatic signal: a failing From-domain DKIM signature vetoes it.
  const guessVetoed = f.spf?.guess && dkimFailure(fromDomain, f.dkimPass, f.dkimFail, mode)
  const auth = [guessVetoed ? null : spfPassDomain(f.spf), ...f.dkimPass.map(canonicalDomain)].filter((d): d is string => !!d)
  return [...new Set(auth.filter((d) => aligned(d, fromDomain, mode)))]
}

/** The domains an authenticated From makes eligible after DATA, and their list candidates. */
export interface DataDomains {
  /** The From domain and the passing SPF/DKIM domains aligned with it. */
  domains: string[]
  /** Their parent-domain candidates, asked of domain:allow and domain:green alike. */
  candidates: string[]
}

/**
 * The domains a message's lookups after DATA are about; null when there is nothing to ask
 * (no recipient left open, no usable From, or no passing domain aligned with it).
 */
export function dataDomains(f: DataFacts, cfg: PolicyConfig): DataDomains | null {
  const failure = dataFailure(f, cfg)
  if (!('mailbox' in f.from) || !f.recipients.some((r) => needsCheck(r, failure))) return null
  const authd = alignedDomains(f, cfg.alignment)
  if (authd.length === 0) return null
  // The From domain is authenticated through an aligned identifier (DMARC), so
  // it and the aligned identifiers themselves may match domain:allow entries.
  const domains = [f.from.mailbox.domain, ...authd]
  return { domains, candidates: allCandidates(domains) }
}

/** What to ask after DATA; `eligible`: dataDomains' answer, when the caller has it already. */
export function planData(f: DataFacts, cfg: PolicyConfig, eligible: DataDomains | null = dataDomains(f, cfg)): LookupRequest {
  const req: LookupRequest = {}
  if (!eligible || !('mailbox' in f.from)) return req
  // domain:allow and domain:green are asked for the same candidates (read-only, shared).
  req.domainCandidates = eligible.candidates
  Object.assign(req, planDomainGreen(eligible.domains, cfg.green, req.domainCandidates))
  const failure = dataFailure(f, cfg)
  // An address book never outweighs failed authentication: not asked then.
  const owners = failure ? [] : bookOwners(f.recipients.filter((r) => needsCheck(r, failure)))
  const from = f.from.mailbox
  if (owners.length > 0) req.books = owners.map((owner) => ({ owner, members: bookMembers(from) }))
  return req
}

/** The books asked after DATA, in request order: those of the open recipients. */
function bookOwners(open: RecipientState[]): string[] {
  return [...new Set(open.map((r) => r.rcpt?.address).filter((a): a is string => !!a))]
}

export interface DataDecision {
  message: Decision
  recipients: Decision[]
}

export function decideData(f: DataFacts, answers: LookupReply | null, cfg: PolicyConfig): DataDecision {
  const failure = dataFailure(f, cfg)
  const open = f.recipients.filter((r) => needsCheck(r, failure))
  if (open.length === 0) return summarise(f, f.recipients.map((r) => r.prior), failure)
  if (!answers) {
    const d: Decision = { verdict: 'defer', rule: 'store-error', final: true, reason: 'list store unavailable' }
    return { message: d, recipients: f.recipients.map(() => d) }
  }
  const authd = alignedDomains(f, cfg.alignment)
  const fromText = 'mailbox' in f.from ? f.from.mailbox.address : `no usable From (${f.from.problem})`
  // The peer's green basis, unless it is an automatic signal and authentication failed.
  const pg = f.peerGreen
  const vetoed = failure && pg && isAutomatic(pg.rule) ? `; ${vetoText(pg)}` : ''
  const peer = pg && !vetoed ? greenDecision(pg, failure) : null
  const deferred = (why: string): Decision =>
    failure ? { verdict: 'defer', rule: 'auth-fail', final: true, reason: `failed authentication (${failure}); ${why}${vetoed}` } : { verdict: 'defer', rule: 'none', final: true, reason: why }
  if (authd.length === 0) {
    // Without an aligned identifier the From is unauthenticated: no domain or book rule
    // counts, and every open recipient takes the same verdict (the peer's green basis, else
    // the deferral), made once for all of them.
    const unauth =
      'mailbox' in f.from
        ? `From ${fromText} not ${cfg.alignment}-aligned with a passing SPF/DKIM domain (spf=${f.spf?.result ?? 'none'}${f.spf?.domain ? ` ${printable(f.spf.domain)}` : ''}, dkim pass=${f.dkimPass.map((d) => printable(d)).join(',') || 'none'})`
        : fromText
    const same = peer ?? deferred(unauth)
    return summarise(f, f.recipients.map((r) => (needsCheck(r, failure) ? same : r.prior)), failure)
  }
  const members = answers.books ?? []
  const bookMember = new Map(bookOwners(open).map((owner, i) => [owner, members[i] ?? null]))
  const dg = domainGreen(answers, f.now, cfg.green)
  const domainBasis = dg && !(failure && isAutomatic(dg.rule)) ? greenDecision(dg, failure, `From ${fromText} authenticated via ${authd.join(',')}; ${dg.reason}`) : null
  const recipients = f.recipients.map((r): Decision => {
    if (!needsCheck(r, failure)) return r.prior
    if (answers.domainAllow) {
      const d: Decision = { verdict: 'trusted', rule: 'domain:allow', final: true, reason: `From ${fromText} authenticated via ${authd.join(',')}, domain:allow ${hitText(answers.domainAllow)}`, entry: answers.domainAllow.entry }
      return overriding(d, failure)
    }
    const member = r.rcpt && !failure ? bookMember.get(r.rcpt.address) : null
    if (member && r.rcpt) {
      return { verdict: 'trusted', rule: 'book', final: true, reason: `authenticated From ${fromText} matches ${member} in the book of ${r.rcpt.address}` }
    }
    return domainBasis ?? peer ?? deferred(`From ${fromText} authenticated via ${authd.join(',')} but in no list`)
  })
  return summarise(f, recipients, failure)
}

/**
 * One reply after DATA covers the whole message: trusted only if every
 * recipient is, green if every recipient has a basis, otherwise deferred (or,
 * on an MX6 listener, the fallback) for everyone, so that it comes back over
 * IPv4 rather than being delivered to some recipients only.
 */
function summarise(f: DataFacts, recipients: Decision[], failure: string | null): DataDecision {
  if (recipients.length === 0) return { message: { verdict: 'skip', rule: 'none', final: true, reason: 'no recipients' }, recipients }
  const accepted = acceptedTogether(recipients)
  // Accepted by operator entries only (needsCheck let no other basis through a failure).
  if (accepted) return { message: overriding(accepted, failure), recipients }
  const bad = recipients.filter((d) => d.verdict !== 'trusted' && d.verdict !== 'green')
  const reason =
    bad.length === recipients.length
      ? bad[0].reason
      : `${bad.length} of ${recipients.length} recipients without basis (${bad[0].reason}); whole message ${f.mx6 ? 'falls back' : 'deferred'}`
  // The message's rule says why: failed authentication, Redis (in mode=observe a recipient
  // deferred at RCPT for it reaches DATA), or no basis.
  const rule: Rule = failure ? 'auth-fail' : bad.some((d) => d.rule === 'store-error') ? 'store-error' : 'none'
  // On an MX6 listener the sender promised to understand "retry over IPv4".
  return { message: { verdict: f.mx6 ? 'fallback' : 'defer', rule, final: true, reason }, recipients }
}

/**
 * A decision as mode=observe records it: a deferral (or fallback) becomes would-defer (or
 * would-fallback), with everything else kept, and the mail is then left alone.
 */
export function observed(d: Decision, mode: 'enforce' | 'observe'): Decision {
  if (mode === 'enforce' || (d.verdict !== 'defer' && d.verdict !== 'fallback')) return d
  return { ...d, verdict: d.verdict === 'defer' ? 'would-defer' : 'would-fallback' }
}

/**
 * The message's verdict when every recipient is trusted or green: the weakest of them
 * (green before trusted), final; null when one is neither (or there is none).
 */
export function acceptedTogether(recipients: readonly Decision[]): Decision | null {
  let weakest: Decision | undefined
  for (const d of recipients) {
    if (d.verdict === 'green') weakest ??= d
    else if (d.verdict !== 'trusted') return null
  }
  weakest ??= recipients[0]
  if (!weakest) return null
  return weakest.final ? weakest : { ...weakest, final: true }
}

/**
 * Each greenlisting list lookup of this transaction: hit (with the entry), miss, or not
 * asked. Without a hit and without history the words depend only on which lists were asked
 * (16 combinations): each is made once (see noHitSummaries).
 */
export function greenSummary(k: Known): string {
  if (k.history !== undefined || k.ipGreen || k.hostGreen || k.asnGreen || k.domainGreen) return summariseGreen(k)
  const asked = (k.ipGreen === null ? 8 : 0) | (k.hostGreen === null ? 4 : 0) | (k.asnGreen === null ? 2 : 0) | (k.domainGreen === null ? 1 : 0)
  return (noHitSummaries[asked] ??= summariseGreen(k))
}

/** greenSummary's words for a transaction without a hit, by which of the four lists were asked. */
const noHitSummaries: string[] = []

function summariseGreen(k: Known): string {
  const one = (name: string, h: Known['ipGreen']) => `${name}=${h === undefined ? 'n/a' : h ? `hit(${printable(h.entry, 60)})` : 'miss'}`
  const hist = k.history === undefined ? 'n/a' : k.history.map((h) => (h ? `${h.domain}:${h.count}` : 'none')).join(',')
  return [one('ip:green', k.ipGreen), one('host:green', k.hostGreen), one('asn:green', k.asnGreen), one('domain:green', k.domainGreen), `history=${hist}`].join(' ')
}

/** Text from the peer made safe for a log line or a reply: printable ASCII, bounded. */
export function printable(text: unknown, max = 200): string {
  const s = String(text ?? '')
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > max ? `${clean.slice(0, max)}...` : clean
}
