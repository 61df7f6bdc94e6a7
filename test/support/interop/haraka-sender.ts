// Haraka's own outbound as an interop sender, in the sender namespace: plain (MX lookup, the
// kernel picks the address family) or with mx6-send (MX6 SRV first, otherwise IPv4 only).
import fs from 'node:fs'
import path from 'node:path'
import { HarakaServer } from '../haraka'
import { SENDER, SenderNetns } from '../sender-netns'
import { submitSmtp, SUBMIT_PORT } from './exim'
import { harakaView } from './logs'
import type { InteropSender, SenderView, Submission } from './types'

const RELAY_ALL = 'exports.hook_connect_init = (next, connection) => { connection.relaying = true; next() }'

export class HarakaSender implements InteropSender {
  private constructor(
    readonly name: string,
    private readonly netns: SenderNetns,
    private readonly haraka: HarakaServer,
  ) {}

  static async start(withMx6Send: boolean): Promise<HarakaSender> {
    const netns = await SenderNetns.create()
    try {
      const haraka = await HarakaServer.start({
        listen: [`[${SENDER.v6}]:${SUBMIT_PORT}`],
        plugins: ['relay-all', ...(withMx6Send ? ['mx6-send'] : [])],
        pluginFiles: { 'relay-all': RELAY_ALL },
        exec: netns.prefix(),
        config: {
          me: SENDER.hostname,
          // 5 s is the shortest retry interval Haraka accepts.
          'outbound.ini': 'temp_fail_intervals=5s,5s,5s,5s,5s,5s,5s,5s\n',
          // No fallback log: mx6-send then needs no Redis (none is reachable from this namespace).
          ...(withMx6Send ? { 'mx6-send.ini': `[fallback]\nlog_size=0\n` } : {}),
        },
      })
      return new HarakaSender(withMx6Send ? 'haraka+mx6-send' : 'haraka', netns, haraka)
    } catch (err) {
      await netns.remove()
      throw err
    }
  }

  async version(): Promise<string> {
    const pkg = path.resolve(__dirname, '..', '..', '..', '..', 'node_modules', 'Haraka', 'package.json')
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version
  }

  async submit(m: Submission): Promise<void> {
    await submitSmtp(SENDER.v6, SUBMIT_PORT, m)
  }

  view(m: Submission): SenderView {
    return harakaView(this.log(), m.from)
  }

  async kick(): Promise<void> {
    // temp_fail_intervals=5s
  }

  log(): string {
    return this.haraka.log()
  }

  async stop(): Promise<void> {
    await this.haraka.stop()
    await this.netns.remove()
  }
}
