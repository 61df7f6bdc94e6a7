// What mx6-learn learns from one queued transaction. Pure: facts in, a plan of
// Redis writes out (executed in one pipeline by the glue).
import { authenticatedDomains, type AuthFacts } from '../mx6-receive/decide-data'
import type { Alignment } from '../lib/domain'
import type { Mailbox } from '../lib/mailbox'

export interface LearnConfig {
  books: { enabled: boolean; maxAgeDays: number; maxEntries: number }
  history: { enabled: boolean; alignment: Alignment; ttlDays: number; dmarc: boolean }
}

export interface BookLesson {
  /** The local user: the envelope sender, normalised like a recipient. */
  owner: string
  /** External recipients to add to the owner's book. */
  members: string[]
}

export interface HistoryLesson {
  /** The authenticated, aligned From domain. */
  domain: string
  reason: string
}

/**
 * Outbound mail of a local user teaches that user's address book: every
 * recipient outside our own domains. Mail from a sender of another domain
 * (an open relay client, a forwarder) teaches nothing.
 */
export function bookLesson(sender: Mailbox | null, rcpts: Array<Mailbox | null>, isLocal: (domain: string) => boolean): BookLesson | null {
  if (!sender || !isLocal(sender.domain)) return null
  const members = [...new Set(rcpts.filter((r): r is Mailbox => !!r && !isLocal(r.domain)).map((r) => r.address))]
  return members.length ? { owner: sender.address, members } : null
}

/**
 * Inbound IPv4 mail whose From domain is authenticated (aligned SPF or DKIM pass, or DMARC
 * pass: as mx6-receive judges it) adds to that domain's history; a DMARC fail or temperror
 * adds nothing.
 */
export function historyLesson(f: Pick<AuthFacts, 'spf' | 'dkimPass' | 'from' | 'dmarc'>, alignment: Alignment): HistoryLesson | null {
  if (!('mailbox' in f.from)) return null
  const authd = authenticatedDomains({ ...f, dkimFail: [] }, alignment)
  if (authd.length === 0) return null
  const dmarc = f.dmarc?.result === 'pass' ? ` (${f.dmarc.authResults})` : ''
  return { domain: f.from.mailbox.domain, reason: `From ${f.from.mailbox.domain} authenticated via ${authd.join(',')}${dmarc}` }
}

/** Whether DMARC can change the lesson: a From, and some SPF or DKIM pass it could align. */
export function dmarcMatters(f: Pick<AuthFacts, 'spf' | 'dkimPass' | 'from'>): boolean {
  return 'mailbox' in f.from && (f.spf?.result === 'pass' || f.dkimPass.length > 0)
}
