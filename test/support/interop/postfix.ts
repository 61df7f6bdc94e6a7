// The test bed's PostfixSender (../postfix.ts) as an interop sender.
import { PostfixSender } from '../postfix'
import { postfixView } from './logs'
import type { InteropSender, SenderView, Submission } from './types'

export class PostfixInterop implements InteropSender {
  readonly name = 'postfix'
  private constructor(private readonly pf: PostfixSender) {}

  static async start(): Promise<PostfixInterop> {
    return new PostfixInterop(await PostfixSender.start())
  }

  version(): Promise<string> {
    return this.pf.version()
  }

  async submit(m: Submission): Promise<void> {
    await this.pf.send({ from: m.from, to: m.to, subject: m.subject, headers: { 'Message-ID': m.messageId } })
  }

  view(m: Submission): SenderView {
    return postfixView(this.pf.log(), m.messageId)
  }

  async kick(): Promise<void> {
    // queue_run_delay and the backoff times are 1-2 s (../postfix.ts)
  }

  log(): string {
    return this.pf.log()
  }

  stop(): Promise<void> {
    return this.pf.stop()
  }
}
