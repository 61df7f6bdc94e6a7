// DMARC (RFC 7489) of the From domain, from the SPF and DKIM results haraka-plugin-spf and
// haraka-plugin-dkim found. mailauth does the policy discovery (its lookups, its Public
// Suffix List fallback); this module checks its pick against RFC 7489 section 6.6.3, validates
// the record (permerror) and does the identifier alignment itself: mailauth 4.13's
// getAlignment() accepts a relaxed match under adkim=s / aspf=s.
import getDmarcRecord from 'mailauth/lib/dmarc/get-dmarc-record'
import { aligned, canonicalDomain, orgDomain, type Alignment } from '../lib/domain'
import { commentText, dnsError, MailauthDns, type MailauthResolver, type TxtResolver } from './mailauth-dns'

export type { TxtResolver } from './mailauth-dns'

export type DmarcResult = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror'
export type DmarcPolicy = 'none' | 'quarantine' | 'reject'

export interface DmarcInput {
  /** The RFC5322.From domain. */
  fromDomain: string
  /** The MAIL FROM domain when SPF passed, else null. */
  spfPassDomain: string | null
  /** d= of each DKIM signature that passed. */
  dkimPassDomains: readonly string[]
}

export interface DmarcOutcome {
  result: DmarcResult
  /** The domain whose record applied (the From domain, or its organizational domain); the From domain without one. */
  domain: string
  /** p=, or sp= for a subdomain when the org record has sp=; null without a (valid) record. */
  policy: DmarcPolicy | null
  /** The identifier that passed aligned (per the record's adkim/aspf): "dkim example.com" / "spf mail.example.com"; null. */
  aligned: string | null
  /** One Authentication-Results resinfo, e.g. "dmarc=pass (p=REJECT) header.from=example.com". */
  authResults: string
}

/** Evaluates DMARC; never rejects: DNS trouble is temperror, a broken record permerror. */
export async function evaluateDmarc(input: DmarcInput, resolver: TxtResolver, timeoutMs: number): Promise<DmarcOutcome> {
  const from = canonicalDomain(input.fromDomain)
  if (!from) return outcome('permerror', commentText(input.fromDomain, 100), null, `unusable From domain`)
  const dns = new MailauthDns(resolver, timeoutMs)
  const org = orgDomain(from)
  // Only the two names of RFC 7489 section 6.6.3 are asked (mailauth would ask "_dmarc.null"
  // for a From domain that is itself a public suffix).
  const names = new Set([`_dmarc.${from}`, `_dmarc.${org}`])
  const resolve: MailauthResolver = (name, rrtype) =>
    names.has(name.toLowerCase()) ? dns.resolve(name, rrtype) : Promise.reject(dnsError('ENOTFOUND', `${name}: not a policy name`))
  try {
    // mailauth's discovery asks the names; its pick is then checked over the same answers.
    await getDmarcRecord(from, resolve)
  } catch (err) {
    // Section 6.6.3 step 1 (and RFC 8601 section 2.7.1): a DNS error is temporary.
    return outcome('temperror', from, null, `DNS: ${dns.failure ?? (err as Error).message}`)
  }
  const pick = discovered(from, org, dns)
  if ('none' in pick) return outcome('none', from, null, pick.none)
  if ('permerror' in pick) return outcome('permerror', pick.domain, null, pick.permerror)
  const record = parseRecord(pick.record)
  if ('error' in record) return outcome('permerror', pick.domain, null, `_dmarc.${pick.domain}: ${record.error}`)
  const t = record.tags
  const p = t.get('p') as DmarcPolicy
  const sp = t.get('sp') as DmarcPolicy | undefined
  // Section 6.3 "sp": the org domain's record, applied to a subdomain, uses sp= when it has one.
  const policy = pick.domain !== from && sp ? sp : p
  const match = alignedIdentifier(from, input, t.get('adkim') === 's' ? 'strict' : 'relaxed', t.get('aspf') === 's' ? 'strict' : 'relaxed')
  const comment = `p=${p.toUpperCase()}${sp ? ` sp=${sp.toUpperCase()}` : ''}`
  return { ...outcome(match ? 'pass' : 'fail', pick.domain, policy, comment, from), aligned: match }
}

type Pick = { record: string; domain: string } | { none: string } | { permerror: string; domain: string }

/** A record the policy discovery keeps (section 6.6.3 step 3); mailauth's own test. */
const DMARC1 = /^v=DMARC1\b/i
/** A text evidently meant as a DMARC record although its v=DMARC1 is not first (or absent). */
const DMARC_LIKE = /(^|;)\s*(v\s*=\s*DMARC|p\s*=)/i

/**
 * The record section 6.6.3 picks from the answers mailauth got. It is mailauth's pick but in two
 * cases: several DMARC records at the From domain end discovery (step 5), where mailauth falls
 * back to the org domain; and a text without a leading v=DMARC1, which mailauth skips.
 */
function discovered(from: string, org: string, dns: MailauthDns): Pick {
  for (const domain of org === from ? [from] : [from, org]) {
    const answer = dns.answers.get(`_dmarc.${domain}`)
    const texts = answer && 'ok' in answer ? answer.ok.map((t) => t.trim()) : []
    const records = texts.filter((t) => DMARC1.test(t))
    if (records.length > 1) return { none: `${records.length} DMARC records at _dmarc.${domain}` }
    if (records.length === 1) return { record: records[0], domain }
    // Section 6.3 says such a text is to be ignored; it is evidently a DMARC record gone wrong,
    // so a broken record it is (RFC 7489 section 11.2 "permerror").
    const broken = texts.find((t) => DMARC_LIKE.test(t))
    if (broken) return { permerror: `_dmarc.${domain}: v=DMARC1 is not the first tag`, domain }
  }
  return { none: '' }
}

const POLICIES = new Set(['none', 'quarantine', 'reject'])
const TAG = /^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)$/s
/** Tag values per section 6.4 (ABNF): what a valid record may say for each tag it understands. */
const VALID: Record<string, (v: string) => boolean> = {
  p: (v) => POLICIES.has(v.toLowerCase()),
  sp: (v) => POLICIES.has(v.toLowerCase()),
  adkim: (v) => /^[rs]$/i.test(v),
  aspf: (v) => /^[rs]$/i.test(v),
  pct: (v) => /^\d{1,3}$/.test(v) && Number(v) <= 100,
  ri: (v) => /^\d{1,10}$/.test(v) && Number(v) <= 0xffffffff,
  fo: (v) => /^[01ds](\s*:\s*[01ds])*$/i.test(v),
  rf: (v) => /^[A-Za-z][A-Za-z0-9-]*(\s*:\s*[A-Za-z][A-Za-z0-9-]*)*$/.test(v),
}

/**
 * The record's tags (lower-case names and values), or why it is broken: v=DMARC1 first, a
 * valid p= (section 6.3 "REQUIRED"), valid values for the tags of section 6.3, each tag
 * once. Unknown tags are ignored (section 6.3); rua/ruf are for reports, not checked here.
 * Section 6.6.3 lets a record with a bad p= but a valid rua= count as p=none; a record that
 * says nothing usable about policy is taken as the syntax error it is (section 11.2).
 */
export function parseRecord(text: string): { tags: Map<string, string> } | { error: string } {
  const tags = new Map<string, string>()
  const parts = text
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
  for (const [i, part] of parts.entries()) {
    const m = TAG.exec(part)
    if (!m) return { error: `malformed tag "${commentText(part, 40)}"` }
    const name = m[1].toLowerCase()
    const value = m[2].trim()
    // Section 6.3 wants "DMARC1" exactly; the case is let go, as mailauth's discovery does.
    if (i === 0 && (name !== 'v' || !/^DMARC1$/i.test(value))) return { error: 'v=DMARC1 is not the first tag' }
    if (tags.has(name)) return { error: `${name}= given twice` }
    const valid = VALID[name]
    if (valid && !valid(value)) return { error: `bad ${name}=${commentText(value, 40)}` }
    tags.set(name, VALID[name] && name !== 'rf' ? value.toLowerCase() : value)
  }
  if (!tags.has('p')) return { error: 'no p= tag' }
  return { tags }
}

/** Section 3.1: an aligned DKIM pass (preferred: it survives forwarding), else an aligned SPF pass. */
function alignedIdentifier(from: string, input: DmarcInput, dkimMode: Alignment, spfMode: Alignment): string | null {
  for (const d of input.dkimPassDomains) {
    const domain = canonicalDomain(d)
    if (domain && aligned(domain, from, dkimMode)) return `dkim ${domain}`
  }
  const spf = canonicalDomain(input.spfPassDomain)
  return spf && aligned(spf, from, spfMode) ? `spf ${spf}` : null
}

function outcome(result: DmarcResult, domain: string, policy: DmarcPolicy | null, comment: string, from = domain): DmarcOutcome {
  // RFC 7489 section 11.2: header.from is the From domain, whichever record applied.
  const c = commentText(comment)
  const authResults = `dmarc=${result}${c ? ` (${c})` : ''}${canonicalDomain(from) ? ` header.from=${from}` : ''}`
  return { result, domain, policy, aligned: null, authResults }
}
