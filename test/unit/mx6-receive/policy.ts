// The policy the pure decision tests start from (every green rule off), and a mailbox helper.
import { normaliseMailbox, type Mailbox } from '../../../plugins/lib/mailbox'
import { AUTH_DEFAULTS } from '../../../plugins/mx6-receive/auth'
import type { PolicyConfig } from '../../../plugins/mx6-receive/decide'
import { GREEN_DEFAULTS } from '../../../plugins/mx6-receive/green'

export const CFG: PolicyConfig = { skipPrivate: true, undecided: 'wait', alignment: 'relaxed', green: { ...GREEN_DEFAULTS, ipGreen: false, fcrdns: false, hostGreen: false, domainGreen: false, history: { ...GREEN_DEFAULTS.history, enabled: false } }, auth: AUTH_DEFAULTS }

/** user@host as the plugin normalises a recipient ("+" tags dropped); throws on an unusable address. */
export function box(a: string): Mailbox {
  const [u, h] = a.split('@')
  const m = normaliseMailbox(u, h, '+')
  if (!m) throw new Error(a)
  return m
}
