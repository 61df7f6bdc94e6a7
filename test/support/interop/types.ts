// What the interop matrix needs from each sending MTA (postfix, exim, opensmtpd, haraka).
import path from 'node:path'

/** Where scripts/prepare.sh unpacks the senders that are never installed (dpkg -x). */
export const INTEROP_ROOT = path.resolve(__dirname, '..', '..', '..', '..', '.cache', 'interop', 'root')

export interface Submission {
  /** Envelope sender: unique per message, so every log line can be attributed. */
  from: string
  to: string
  messageId: string
  subject: string
}

/** The sender's own account of one message, from its log. */
export interface SenderView {
  /** Times the message went back to the queue (a later delivery attempt was needed). */
  deferrals: number
  /** The sender gave up and generated a bounce (DSN) for it. */
  bounced: boolean
}

export interface InteropSender {
  /** 'postfix', 'exim', 'opensmtpd', 'haraka', 'haraka+mx6-send' */
  readonly name: string
  version(): Promise<string>
  submit(m: Submission): Promise<void>
  view(m: Submission): SenderView
  /** Starts a queue run now, for MTAs whose retry timer cannot be made short. */
  kick(): Promise<void>
  log(): string
  stop(): Promise<void>
}
