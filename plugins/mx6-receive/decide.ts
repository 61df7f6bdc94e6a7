// The decision core of mx6-receive, RCPT phase and the shared vocabulary: pure functions,
// no Haraka, no Redis, no DNS. plan*() says what to look up (one Redis round trip),
// decide*() turns the answers into a verdict with the rule that made it and a reason.
// The phase after DATA is in decide-data.ts; the order of steps in session.ts.
import { canonicalDomain, domainCandidates, type Alignment } from '../lib/domain'
import { candidatePrefixes, classifyPeer } from '../lib/ip'
import type { Mailbox } from '../lib/mailbox'
import type { Hit, LookupReply, LookupRequest } from '../lib/store'
import { hitText, printable } from '../lib/text'
import { isAutomatic, overrideText, spfFailure, type AuthConfig } from './auth'
import { domainGreen, peerGreen, planDomainGreen, planPeerGreen, type GreenBasis, type GreenConfig, type GreenRule } from './green'
import type { PeerSignals } from './peer-signals'
import type { ZoneResult } from './reputation'

/**
 * trusted: a whitelist basis; content spam filters are skipped (never the malware scan).
 * green: a weaker (greenlisting) basis; accepted subject to every content filter.
 * fallback: the MX6 "retry over IPv4" reply, only on an MX6 listener after DATA.
 * would-defer, would-fallback: what defer and fallback become in mode=observe (see observed).
 */
export type Verdict = 'skip' | 'trusted' | 'green' | 'pending' | 'defer' | 'fallback' | 'would-defer' | 'would-fallback'

export type Rule = 'ipv4' | 'relaying' | 'auth' | 'private' | 'bad-peer' | 'ip:allow' | 'book' | 'domain:allow' | GreenRule | 'none' | 'auth-fail' | 'store-error'

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

/** IPv4 and our own users are never touched; only public IPv6 peers get the policy. */
export function screenPeer(p: PeerFacts, cfg: PolicyConfig): Screen {
  const skip = (rule: Rule, reason: string): Screen => ({ skip: { verdict: 'skip', rule, final: true, reason } })
  if (p.relaying) return skip('relaying', 'relaying client')
  if (p.authenticated) return skip('auth', 'authenticated client')
  const peer = classifyPeer(p.ip)
  if (!peer) return skip('bad-peer', `peer address "${printable(p.ip)}" not parseable`)
  if (peer.family === 'ipv4') return skip('ipv4', `IPv4 peer ${peer.canonical}`)
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
  /** DNS-based facts about the peer (FCrDNS, origin AS, provider zones), when RCPT waits for them. */
  peerSignals?: PeerSignals
  /** The provider domain zones' answers for the SPF-authenticated domain, when RCPT waits for them. */
  domainZones?: readonly ZoneResult[]
  /** Unix seconds, for the history thresholds. */
  now: number
}

/** Lookups already answered earlier in the same transaction (per-transaction cache). */
export type Known = Omit<LookupReply, 'books' | 'arcTrusted'>

/** The answers of a reply that depend only on the peer and the envelope, added to what is known. */
export function withAnswers(known: Known, reply: LookupReply): Known {
  // Field by field (a spread of varying shapes costs V8 microseconds per message).
  return {
    ipAllow: reply.ipAllow !== undefined ? reply.ipAllow : known.ipAllow,
    domainAllow: reply.domainAllow !== undefined ? reply.domainAllow : known.domainAllow,
    ipGreen: reply.ipGreen !== undefined ? reply.ipGreen : known.ipGreen,
    hostGreen: reply.hostGreen !== undefined ? reply.hostGreen : known.hostGreen,
    asnGreen: reply.asnGreen !== undefined ? reply.asnGreen : known.asnGreen,
    domainGreen: reply.domainGreen !== undefined ? reply.domainGreen : known.domainGreen,
    history: reply.history !== undefined ? reply.history : known.history,
  }
}

export function spfPassDomain(spf: SpfFact | null): string | null {
  return spf?.result === 'pass' ? canonicalDomain(spf.domain) : null
}

/** A sender as the book rules ask for it: the address, then @domain for it and each parent. */
export function bookMembers(sender: Mailbox): string[] {
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

/** A peer in ip:allow: trusted for every recipient, whatever else the transaction says. */
export function trustedPeer(ipv6: string, hit: Hit): Decision {
  return { verdict: 'trusted', rule: 'ip:allow', final: true, reason: `${ipv6} in ip:allow ${hitText(hit)}`, entry: hit.entry }
}

/**
 * `d`, accepted by an operator's own list entry although authentication failed: its reason
 * and results say which failure which entry overrode (see auth.ts).
 */
export function overriding(d: Decision, failure: string | null): Decision {
  if (!failure || d.override) return d
  const override = overrideText(failure, d.entry ? `${d.rule} ${d.entry}` : d.rule)
  return { ...d, reason: `${d.reason}; ${override}`, override }
}

/** A green basis as a decision (trusted for a provider's trusted answer), overriding `failure` when there is one (never vetoed here). */
export function greenDecision(b: GreenBasis, failure: string | null, reason = b.reason): Decision {
  return overriding({ verdict: b.trusted ? 'trusted' : 'green', rule: b.rule, final: true, reason, entry: b.entry }, failure)
}

/** Why an automatic signal that held did not count. */
export function vetoText(b: GreenBasis): string {
  return `${b.rule} does not count with failed authentication (${b.reason})`
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
  const dg = spfPassDomain(f.spf) ? domainGreen(answers, f.now, cfg.green, f.domainZones) : null
  if (dg) return { verdict: dg.trusted ? 'trusted' : 'green', rule: dg.rule, final: false, reason: `${dg.reason} (SPF); From alignment checked after DATA`, entry: dg.entry }
  const why = failure
    ? `failed authentication at rcpt (${failure})${vetoed ? `; ${vetoText(vetoed)}` : ''}`
    : `no basis at rcpt (spf=${f.spf?.result ?? 'none'}${f.spf?.domain ? ` ${printable(f.spf.domain)}` : ''})`
  // MX6 sessions are always decided after DATA, per the proposal.
  if (cfg.undecided === 'defer' && !f.mx6) return { verdict: 'defer', rule: failure ? 'auth-fail' : 'none', final: true, reason: why }
  return { verdict: 'pending', rule: 'none', final: false, reason: `${why}; waiting for DATA${f.mx6 ? ' (MX6 session)' : ''}` }
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
