// The decision core after DATA: pure, like decide.ts. DKIM and the From header are known
// now; one reply covers the whole message.
import { aligned, allCandidates, canonicalDomain, type Alignment } from '../lib/domain'
import type { Mailbox } from '../lib/mailbox'
import type { LookupReply, LookupRequest } from '../lib/store'
import { hitText, printable } from '../lib/text'
import { canOverride, dkimFailure, isAutomatic, spfFailure } from './auth'
import { acceptedTogether, bookMembers, greenDecision, overriding, spfPassDomain, vetoText, type Decision, type PolicyConfig, type Rule, type SpfFact } from './decide'
import type { ArcOutcome } from './arc'
import type { DmarcOutcome } from './dmarc'
import type { ZoneResult } from './reputation'
import { domainGreen, planDomainGreen, type GreenBasis } from './green'

export type FromFact = { mailbox: Mailbox } | { problem: string }

export interface RecipientState {
  rcpt: Mailbox | null
  /** What rcpt decided for this recipient. */
  prior: Decision
}

export interface DataFacts extends AuthFacts {
  mx6: boolean
  /** The peer-level greenlisting found for this peer, a basis for every recipient; null when none. */
  peerGreen: GreenBasis | null
  now: number
  recipients: readonly RecipientState[]
  /** authenticatedDomains() of these facts, found once by the session. */
  aligned: readonly string[]
}

/**
 * The message's failed authentication after DATA (SPF, the From domain's DKIM, DMARC: fail
 * whatever its p=, and temperror, which never accepts), or null.
 */
export function dataFailure(f: AuthFacts, cfg: PolicyConfig): string | null {
  const spf = spfFailure(f.spf, cfg.auth)
  const dkim = 'mailbox' in f.from ? dkimFailure(f.from.mailbox.domain, f.dkimPass, f.dkimFail, cfg.alignment) : null
  const dmarc = f.dmarc?.result === 'fail' || f.dmarc?.result === 'temperror' ? f.dmarc.authResults : null
  return [spf, dkim, dmarc].filter(Boolean).join(', ') || null
}

/**
 * A validated ARC chain that would authenticate the From of a message nothing else
 * authenticates: it counts once its sealer is found in arc:trusted (RFC 8617 section 7.2:
 * whose word counts is local policy).
 */
export function arcCandidate(f: DataFacts): ArcOutcome | null {
  const a = f.arc
  return a && a.chain === 'pass' && a.authenticated && a.sealer && f.aligned.length === 0 && 'mailbox' in f.from ? a : null
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

/** What authenticates a message's From: the envelope's SPF result, the DKIM signatures, DMARC and ARC. */
export interface AuthFacts {
  spf: SpfFact | null
  dkimPass: readonly string[]
  dkimFail: readonly string[]
  from: FromFact
  /** The From domain's DMARC evaluation; absent when not evaluated. */
  dmarc?: DmarcOutcome | null
  /** The message's ARC chain; absent when not evaluated (no ARC headers, nothing to gain). */
  arc?: ArcOutcome | null
  /** The provider domain zones' answers for the authenticated domains; absent when none was asked. */
  domainZones?: readonly ZoneResult[]
}

/**
 * The passing SPF and DKIM domains aligned with the From domain (DMARC identifier
 * alignment). A last-resort SPF guess is an automatic signal: a failing From-domain DKIM
 * signature vetoes it.
 */
export function authenticatedDomains(f: AuthFacts, mode: Alignment): string[] {
  if (!('mailbox' in f.from)) return []
  const fromDomain = f.from.mailbox.domain
  // A DMARC record decides alignment by its own adkim/aspf (RFC 7489 section 3.1); `mode`
  // serves domains without one (none), or with a broken one (permerror, treated as none).
  const d = f.dmarc
  if (d?.result === 'pass') return d.aligned ? [...new Set([d.aligned.split(' ')[1]])].filter(Boolean) : [fromDomain]
  if (d?.result === 'fail' || d?.result === 'temperror') return []
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
  const authd = f.aligned
  // A candidate ARC chain: the From domain is asked for, counted only if the sealer is trusted.
  if (authd.length === 0 && arcCandidate(f)) return { domains: [f.from.mailbox.domain], candidates: allCandidates([f.from.mailbox.domain]) }
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
  const arc = arcCandidate(f)
  if (arc?.sealer) req.arcSealers = [arc.sealer]
  // An address book never outweighs failed authentication (unless a trusted ARC sealer may lift it): not asked then.
  const owners = failure && !arc ? [] : bookOwners(f.recipients.filter((r) => needsCheck(r, failure)))
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
  // A trusted ARC sealer vouches for forwarded mail: it authenticates the From, and the
  // failures forwarding causes (SPF, a broken DKIM signature, DMARC) are overridden by that
  // operator entry, which the reason names.
  const arc = answers?.arcTrusted ? arcCandidate(f) : null
  const failed = dataFailure(f, cfg)
  const failure = arc ? null : failed
  const open = f.recipients.filter((r) => needsCheck(r, failure))
  if (open.length === 0) return summarise(f, f.recipients.map((r) => r.prior), failure)
  if (!answers) {
    const d: Decision = { verdict: 'defer', rule: 'store-error', final: true, reason: 'list store unavailable' }
    return { message: d, recipients: f.recipients.map(() => d) }
  }
  const authd = arc && 'mailbox' in f.from ? [f.from.mailbox.domain] : f.aligned
  const via = arc && answers.arcTrusted ? `arc:trusted ${hitText(answers.arcTrusted)} (${arc.reason})${failed ? `, which overrides ${failed}` : ''}` : authd.join(',')
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
  const dg = domainGreen(answers, f.now, cfg.green, f.domainZones)
  const domainBasis = dg && !(failure && isAutomatic(dg.rule)) ? greenDecision(dg, failure, `From ${fromText} authenticated via ${via}; ${dg.reason}`) : null
  const recipients = f.recipients.map((r): Decision => {
    if (!needsCheck(r, failure)) return r.prior
    if (answers.domainAllow) {
      const d: Decision = { verdict: 'trusted', rule: 'domain:allow', final: true, reason: `From ${fromText} authenticated via ${via}, domain:allow ${hitText(answers.domainAllow)}`, entry: answers.domainAllow.entry }
      return overriding(d, failure)
    }
    const member = r.rcpt && !failure ? bookMember.get(r.rcpt.address) : null
    if (member && r.rcpt) {
      return { verdict: 'trusted', rule: 'book', final: true, reason: `authenticated From ${fromText} matches ${member} in the book of ${r.rcpt.address}` }
    }
    return stronger(domainBasis, peer) ?? deferred(`From ${fromText} authenticated via ${via} but in no list`)
  })
  return summarise(f, recipients, failure)
}

/** The domain's basis, unless only the peer's makes the message trusted (a provider's trusted answer for it). */
function stronger(domain: Decision | null, peer: Decision | null): Decision | null {
  return domain && !(peer?.verdict === 'trusted' && domain.verdict !== 'trusted') ? domain : peer
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
