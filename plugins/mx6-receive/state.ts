// What the plugin keeps per transaction and per connection: beside Haraka's objects, not in
// their notes (notes are shared with every plugin, some of which log or serialise them, and
// this holds promises), and gone with them.
import type { Connection, Transaction } from '../lib/haraka'
import type { PeerSignals } from './peer-signals'
import type { Session } from './session'

/** A transaction's session; null once its peer was screened out (not ours to judge). */
const sessions = new WeakMap<Transaction, Session | null>()

export const transactionState = {
  get: (txn: Transaction): Session | null | undefined => sessions.get(txn),
  set: (txn: Transaction, s: Session | null): void => void sessions.set(txn, s),
}

export interface ConnectionState {
  /** The peer's DNS lookups (before any HELO is applied), asked once per connection. */
  dns?: Promise<PeerSignals | undefined>
  /** They are in the connection results. */
  recorded?: boolean
  /** The peer's forward-confirmed host name, for the follow-up record ('' when none). */
  fcrdnsName: string
}

const connections = new WeakMap<Connection, ConnectionState>()

export function connectionState(c: Connection): ConnectionState {
  let s = connections.get(c)
  if (!s) connections.set(c, (s = { fcrdnsName: '' }))
  return s
}
