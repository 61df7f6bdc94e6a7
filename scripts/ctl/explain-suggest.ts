// mx6ctl explain's suggestions: list entries that would give the message a basis, each
// checked by running the session again with it added, and why the other rules did not apply.
import { aligned, canonicalDomain, orgDomain } from '../../plugins/lib/domain'
import { candidatePrefixes, classifyPeer } from '../../plugins/lib/ip'
import { mailbox } from '../../plugins/mx6-receive/facts'
import type { ListStore, LookupReply, LookupRequest } from '../../plugins/lib/store'
import { printable } from '../../plugins/lib/text'
import type { ReceiveConfig } from '../../plugins/mx6-receive/config'
import type { SpfFact } from '../../plugins/mx6-receive/decide'
import type { Change, Evaluation, ExplainDeps, ExplainFacts, Explanation } from './explain-core'

/** List entries a suggestion would add. */
export interface Additions {
  ipAllow?: string[]
  domainAllow?: string[]
  books?: Array<{ owner: string; member: string }>
  hostGreen?: string[]
  asnGreen?: string[]
  arcTrusted?: string[]
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
    if (req.arcSealers?.length && !reply.arcTrusted) reply.arcTrusted = hit(req.arcSealers, this.add.arcTrusted)
    if (req.books?.length) {
      reply.books = req.books.map((b, i) => reply.books?.[i] ?? b.members.find((m) => this.add.books?.some((x) => x.owner === b.owner && x.member === m)) ?? null)
    }
    return reply
  }

  spfGuess(domain: string): Promise<string | null> {
    return this.inner.spfGuess(domain)
  }
}

function authText(d: string, spf: SpfFact | null, dkim: string[]): string {
  const how: string[] = []
  if (spf?.result === 'pass' && canonicalDomain(spf.domain) === d) how.push(spf.guess ? 'last-resort SPF pass' : 'SPF pass')
  if (dkim.includes(d)) how.push('DKIM pass')
  return how.join(' and ') || 'authenticated'
}

/** Candidate entries, each checked by deciding again with it added. */
export async function suggest(f: ExplainFacts, deps: ExplainDeps, ev: Evaluation, authd: readonly string[], out: Explanation, works: (add: Additions) => Promise<Evaluation>): Promise<void> {
  const cfg = deps.cfg
  const ipv6 = classifyPeer(f.ip)!.canonical
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
      change: { verdict: 'trusted', commands: [`mx6ctl allow domain add ${d}`], effect: `trusted by domain:allow: ${d} has ${authText(d, ev.spf, f.dkimPass)} and is ${cfg.policy.alignment}-aligned with the From domain` },
      whyNot: (e) =>
        cfg.policy.undecided === 'defer' && !ev.mx6 && e.phase === 'rcpt'
          ? `domain:allow ${d} would not help: with undecided=defer only an SPF-authenticated MAIL FROM domain counts at RCPT, and without it the message never reaches DATA over IPv6`
          : `domain:allow ${d} would not help: ${e.final.reason}`,
    })
  }

  // A valid ARC chain whose sealer is not trusted: trusting it (checked like the rest).
  const sealer = ev.arc?.chain === 'pass' && ev.arc.authenticated ? ev.arc.sealer : null
  if (sealer) {
    candidates.push({
      add: { arcTrusted: [sealer] },
      change: { verdict: 'trusted', commands: [`mx6ctl arc add ${sealer}`], effect: `the From domain authenticated by ${sealer}'s ARC seal (${ev.arc!.authenticated}); the domain and book rules then apply` },
      whyNot: (e) => `arc:trusted ${sealer} would not help: ${e.final.reason}`,
    })
  }

  // The sender to put in the books: the authenticated From (after DATA), else the SPF-authenticated envelope sender (at RCPT).
  const spfDomain = ev.spf?.result === 'pass' ? canonicalDomain(ev.spf.domain) : null
  const mailFrom = mailbox(f.mailFrom)
  let sender: { address: string; how: string } | null = null
  if (authd.length && 'mailbox' in f.from) sender = { address: f.from.mailbox.address, how: `the From address, authenticated via ${authd.join(',')}` }
  else if (spfDomain && mailFrom && mailFrom.domain === spfDomain) sender = { address: mailFrom.address, how: `the MAIL FROM address, with ${ev.spf?.guess ? 'last-resort ' : ''}SPF pass` }
  // The message is not trusted: every recipient RCPT did not trust for good needs the entry.
  const owners = [...new Set(ev.rcpts.map((r) => (r.mailbox && !(r.decision.verdict === 'trusted' && r.decision.final) ? r.mailbox.address : null)).filter((o): o is string => !!o))]
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
  const sig = ev.signals
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
export function notesWhyNot(f: ExplainFacts, s: Evaluation, cfg: ReceiveConfig, authd: readonly string[], out: Explanation): void {
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
  if (out.spfAssumed && f.mailFrom?.host) {
    out.notes.push(`SPF: explain cannot evaluate SPF without the peer's session and assumed "none"${s.guess ? ' (then applied the last-resort record)' : ''}; give --spf with the result Haraka's spf plugin logged`)
  }
  const sig = s.signals
  if (sig && cfg.policy.green.fcrdns) {
    if (sig.fcrdns.outcome === 'fail' && sig.fcrdns.confirmed.length) out.notes.push(`FCrDNS: ${sig.fcrdns.detail}: with HELO ${sig.fcrdns.confirmed[0]} the fcrdns green rule would apply`)
    else if (sig.fcrdns.outcome === 'err') out.notes.push(`FCrDNS: ${sig.fcrdns.detail}: DNS trouble counts as no signal`)
  }
}
