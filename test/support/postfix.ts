// A real Postfix 3.7 as the sending MTA, in its own network namespace "<testbed>-snd"
// (sender-netns.ts says why and how).
import crypto from 'node:crypto'
import fs from 'node:fs'
import { formatMainCf, instanceSettings, MASTER_CF_FIXTURE, postfixBaseDir, PostfixInstance, SENDMAIL } from './postfix-instance'
import { poll } from './proc'
import { SENDER, SenderNetns } from './sender-netns'

export { SENDER } from './sender-netns'

export type DeliveryStatus = 'sent' | 'bounced' | 'deferred'

export interface Delivery {
  status: DeliveryStatus
  queueId: string
  to: string
  /** e.g. 'v4mx.rcpt.test[198.51.100.25]:25' */
  relay: string
  dsn: string
  /** Every log line of this queue ID so far, including per-MX failures before the status. */
  lines: string[]
}

export interface SendOptions {
  from: string
  to: string | string[]
  subject?: string
  body?: string
  headers?: Record<string, string>
}

function mainCf(base: string, extra: Record<string, string>): string {
  return formatMainCf({
    ...instanceSettings(base),
    myhostname: SENDER.hostname,
    mydomain: 'other.test',
    myorigin: '$myhostname',
    mydestination: '$myhostname, localhost',
    // The only listener is loopback: never one of the MX addresses, so no "mail loops back".
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'all',
    mynetworks: '127.0.0.0/8',
    relayhost: '',
    smtp_helo_name: SENDER.hostname,
    // Deterministic: IPv6 MX addresses first (the order real dual-stack senders use).
    smtp_address_preference: 'ipv6',
    smtp_tls_security_level: 'none',
    alias_maps: '',
    alias_database: '',
    // Double bounces go to postmaster@$myhostname: discard them rather than write to /var/mail.
    local_transport: 'discard:local delivery disabled in the test bed',
    biff: 'no',
    queue_run_delay: '1s',
    minimal_backoff_time: '1s',
    maximal_backoff_time: '2s',
    smtp_connect_timeout: '5s',
    ...extra,
  })
}

export class PostfixSender {
  private readonly instance: PostfixInstance

  private constructor(
    private readonly netns: SenderNetns,
    /** Holds etc/ (config_directory), spool/, data/ and maillog. */
    readonly base: string,
  ) {
    this.instance = new PostfixInstance(base)
  }

  get ns(): string {
    return this.netns.ns
  }

  get configDir(): string {
    return this.instance.configDir
  }

  get logFile(): string {
    return this.instance.logFile
  }

  /** `mainCf` overrides or adds main.cf settings (e.g. { smtp_mx_session_limit: '3' }). */
  static async start(opts: { mainCf?: Record<string, string> } = {}): Promise<PostfixSender> {
    const netns = await SenderNetns.create()
    const sender = new PostfixSender(netns, postfixBaseDir('postfix'))
    try {
      const masterCf = fs.readFileSync(MASTER_CF_FIXTURE, 'utf8')
      await sender.instance.start(mainCf(sender.base, opts.mainCf ?? {}), masterCf, (cmd, args) => netns.exec(cmd, args))
    } catch (err) {
      await sender.stop()
      throw err
    }
    return sender
  }

  /** The installed Postfix's version, e.g. '3.7.11'. */
  async version(): Promise<string> {
    return (await this.netns.exec('/usr/sbin/postconf', ['-d', '-h', 'mail_version'])).trim()
  }

  /** Injects a message with Postfix's sendmail; returns its Message-ID ('<...>'). */
  async send(o: SendOptions): Promise<string> {
    const to = Array.isArray(o.to) ? o.to : [o.to]
    const messageId = `<${crypto.randomUUID()}@${SENDER.hostname}>`
    const headers: Record<string, string> = {
      From: o.from,
      To: to.join(', '),
      Subject: o.subject ?? 'test bed message',
      Date: new Date().toUTCString(),
      'Message-ID': messageId,
      ...o.headers,
    }
    const text = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n') + `\n\n${o.body ?? 'Hello from the test bed.'}\n`
    await this.netns.exec(SENDMAIL, ['-C', this.configDir, '-i', '-f', o.from, '--', ...to], { input: text })
    return messageId
  }

  /** Waits for the next delivery status (sent/bounced/deferred, or one in `until`) of a message. */
  async waitFor(id: string, timeoutMs = 15000, until: DeliveryStatus[] = ['sent', 'bounced', 'deferred']): Promise<Delivery> {
    const byMessageId = id.includes('@')
    const wantedMid = id.replace(/^<?/, '<').replace(/>?$/, '>')
    return poll(() => {
      const log = this.log().split('\n')
      let queueId = id
      if (byMessageId) {
        const hit = log.map((l) => / ([0-9A-F]+): message-id=(\S+)/.exec(l)).find((m) => m && m[2] === wantedMid)
        if (!hit) return undefined
        queueId = hit[1]
      }
      const lines = log.filter((l) => l.includes(` ${queueId}: `))
      for (const l of lines) {
        const m = / to=<([^>]*)>,.* relay=([^,]+),.* dsn=([\d.]+), status=(\w+)/.exec(l)
        if (m && until.includes(m[4] as DeliveryStatus)) {
          return { status: m[4] as DeliveryStatus, queueId, to: m[1], relay: m[2], dsn: m[3], lines }
        }
      }
      return undefined
    }, timeoutMs, `delivery status of ${id} in ${this.logFile}`)
  }

  log(): string {
    return this.instance.log()
  }

  /** Stops Postfix and removes the namespace, veth, /etc/netns entry and files. Safe to repeat. */
  async stop(): Promise<void> {
    await this.instance.stopMaster()
    await this.netns.remove()
    fs.rmSync(this.base, { recursive: true, force: true })
  }
}
