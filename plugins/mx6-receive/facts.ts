// Turning Haraka's connection and transaction into facts for the decision core.
import { parseHeader } from '@haraka/email-address'
import { canonicalDomain } from '../lib/domain'
import type { Connection, HarakaAddress, Transaction } from '../lib/haraka'
import { normaliseMailbox, type Mailbox } from '../lib/mailbox'
import { memo } from '../lib/memo'
import type { PeerFacts, SpfFact } from './decide'
import type { FromFact } from './decide-data'

export function peerFacts(c: Connection): PeerFacts {
  return {
    ip: c.remote.ip,
    private: !!c.remote.is_private,
    relaying: !!c.relaying,
    authenticated: !!c.notes.auth_user,
  }
}

export function mailbox(addr: HarakaAddress | null | undefined, delimiter = ''): Mailbox | null {
  if (!addr) return null
  return normaliseMailbox(addr.user, addr.host, delimiter)
}

/** haraka-plugin-spf records {scope: 'mfrom', result: 'Pass', domain} on the transaction. */
export function spfFact(txn: Transaction): SpfFact | null {
  const r = txn.results.get('spf')
  if (!r || r.scope !== 'mfrom' || typeof r.result !== 'string') return null
  return { result: r.result.toLowerCase(), domain: typeof r.domain === 'string' ? r.domain : null }
}

/** haraka-plugin-dkim records {pass: [d=, ...]} for each signature that verified. */
export function dkimPassDomains(txn: Transaction): string[] {
  return dkimDomains(txn, 'pass')
}

/** ... and {fail: [d=, ...]} for each signature that did not. */
export function dkimFailDomains(txn: Transaction): string[] {
  return dkimDomains(txn, 'fail')
}

function dkimDomains(txn: Transaction, list: 'pass' | 'fail'): string[] {
  const found = txn.results.get('dkim')?.[list]
  const domains = Array.isArray(found) ? found : found ? [found] : []
  return domains.map((d) => canonicalDomain(d)).filter((d): d is string => !!d)
}

/**
 * The RFC5322.From mailbox. DMARC (RFC 7489 section 6.6.1) leaves messages with
 * several From fields or authors to local policy: here they have no usable From,
 * so they can only be trusted on a non-domain basis (e.g. ip:allow).
 */
export function fromFact(txn: Transaction): FromFact {
  const fields = txn.header.get_all('From')
  if (fields.length === 0) return { problem: 'no From header' }
  if (fields.length > 1) return { problem: 'several From headers' }
  // Most mail comes from a few senders: the same From field is parsed once while remembered.
  return fields[0].length <= 1000 ? fromMemo(fields[0]) : parseFrom(fields[0])
}

/** One From field as DMARC reads it: exactly one mailbox (mx6ctl explain parses --from with it too). */
export function parseFrom(field: string): FromFact {
  let parsed: unknown[]
  try {
    parsed = parseHeader(field.trim(), { startAt: 'mailbox-list' }) as unknown[]
  } catch {
    return { problem: 'unparseable From header' }
  }
  if (parsed.length !== 1) return { problem: `${parsed.length} From mailboxes` }
  const box = mailbox(parsed[0] as HarakaAddress)
  return box ? { mailbox: box } : { problem: 'unusable From address' }
}
const fromMemo = memo(1024, (field) => Object.freeze(parseFrom(field)))

/** Matches a recipient seen at rcpt with the same one in txn.rcpt_to after DATA. */
export function rcptId(addr: HarakaAddress): string {
  return `${addr.user}@${addr.host}`.toLowerCase()
}
