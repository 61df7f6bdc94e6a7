// The follow-up record of a deferred (or fallen-back) IPv6 attempt, so that its return over
// IPv4 can be recognised (mx6-learn) and reported (mx6ctl followup).
import { envelopeFingerprint, messageIdFingerprint, net64, toFields, type Attempt } from '../lib/followup'
import type { Connection, HarakaAddress, Transaction } from '../lib/haraka'
import type { AttemptRecord, ListStore } from '../lib/store'
import { printable } from '../lib/text'
import type { ReceiveConfig } from './config'
import { mailbox } from './facts'
import { connectionState } from './state'

export interface AttemptFacts {
  ipv6: string
  phase: 'rcpt' | 'data_post'
  verdict: Attempt['verdict']
  reason: string
  rcpts: HarakaAddress[]
  /** The authenticated From domain, else '' (the MAIL FROM domain is used). */
  domain: string
}

/**
 * Hands the store the record, built when it is written (off the decision path). Only what
 * the transaction will not hold once Haraka resets it is read now: strings, no references.
 */
export function rememberAttempt(store: Pick<ListStore, 'recordAttempt'>, cfg: ReceiveConfig, connection: Connection, txn: Transaction, a: AttemptFacts): void {
  const f = cfg.followup
  if (!f.enabled) return
  const from = mailbox(txn.mail_from)
  const addrs = a.rcpts.map((r) => `${r.user}@${r.host}`)
  const messageId = a.phase === 'data_post' ? txn.header.get_all('Message-ID')[0] : undefined
  const time = Math.floor(Date.now() / 1000)
  const host = connectionState(connection).fcrdnsName
  const size = a.phase === 'data_post' ? Number((txn as Transaction & { data_bytes?: number }).data_bytes ?? 0) : 0
  const make = (): AttemptRecord => {
    const attempt: Attempt = {
      time,
      phase: a.phase,
      verdict: a.verdict,
      reason: a.reason,
      mailFrom: from?.address ?? '<>',
      rcpts: addrs.map((r) => printable(r, 100)),
      net: net64(a.ipv6),
      host,
      domain: a.domain || from?.domain || '',
      size,
    }
    return { envelopeHash: envelopeFingerprint(from?.address ?? '', addrs, cfg.recipientDelimiter), midHash: messageIdFingerprint(messageId), fields: toFields(attempt) }
  }
  store.recordAttempt(make, f.ttlDays * 86400, f.maxEntries)
}
