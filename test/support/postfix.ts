// A real Postfix 3.7 as the sending MTA, in its own network namespace "<testbed>-snd".
//
// Why a second namespace: a sender in the receiver's namespace connects from loopback, which
// every policy plugin skips. Here the two namespaces are joined by a veth pair, and Haraka
// sees the sender as 2001:db8:9::2 / 203.0.113.2, reaching the MX addresses through the
// default routes. DNS: the test bed's dnsmasq (bind-dynamic) also listens on the test side of
// the veth, 2001:db8:9::1 / 203.0.113.1, and the sender's resolv.conf points there.
//
// Why nsenter: `ip netns add` run from inside the test bed (itself under `ip netns exec`, whose
// mounts do not propagate back) would create a namespace nobody outside can see or delete. It
// is therefore added and deleted in the mount namespace of scripts/testbed.sh (MX6_TESTBED_PID),
// whose EXIT trap then also removes it after a crash.
import crypto from 'node:crypto'
import fs from 'node:fs'
import { requireTestbed } from './net'
import { alive, formatMainCf, instanceSettings, MASTER_CF_FIXTURE, postfixBaseDir, PostfixInstance, SENDMAIL } from './postfix-instance'
import { poll, run, runOk } from './proc'

const VETH = 'mx6snd0' // test-namespace side; the sender side is "eth0" in its own namespace

export const SENDER = { v6: '2001:db8:9::2', v4: '203.0.113.2', hostname: 'sender.other.test' }
const GATEWAY = { v6: '2001:db8:9::1', v4: '203.0.113.1' }

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
    readonly ns: string,
    /** Holds etc/ (config_directory), spool/, data/ and maillog. */
    readonly base: string,
  ) {
    this.instance = new PostfixInstance(base)
  }

  get configDir(): string {
    return this.instance.configDir
  }

  get logFile(): string {
    return this.instance.logFile
  }

  /** `mainCf` overrides or adds main.cf settings (e.g. { smtp_mx_session_limit: '3' }). */
  static async start(opts: { mainCf?: Record<string, string> } = {}): Promise<PostfixSender> {
    const ns = `${requireTestbed()}-snd`
    if (fs.existsSync(`/run/netns/${ns}`)) {
      throw new Error(`PostfixSender: ${ns} exists; only one sender at a time (stop() the previous one)`)
    }
    const base = postfixBaseDir('postfix')
    const sender = new PostfixSender(ns, base)
    try {
      await sender.network()
      await sender.postfix(opts.mainCf ?? {})
    } catch (err) {
      await sender.stop()
      throw err
    }
    return sender
  }

  private hostNetns(...args: string[]): Promise<string> {
    const pid = process.env.MX6_TESTBED_PID
    if (!pid) throw new Error('MX6_TESTBED_PID unset: run via scripts/testbed.sh')
    return runOk('nsenter', [`--mount=/proc/${pid}/ns/mnt`, '--', 'ip', 'netns', ...args])
  }

  private inNs(cmd: string, args: string[], opts: Parameters<typeof runOk>[2] = {}): Promise<string> {
    return runOk('ip', ['netns', 'exec', this.ns, cmd, ...args], opts)
  }

  private async network(): Promise<void> {
    await this.hostNetns('add', this.ns)
    fs.mkdirSync(`/etc/netns/${this.ns}`, { recursive: true })
    fs.writeFileSync(`/etc/netns/${this.ns}/resolv.conf`, `nameserver ${GATEWAY.v6}\nnameserver ${GATEWAY.v4}\n`)
    await runOk('ip', ['link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns])
    await runOk('ip', ['-6', 'addr', 'add', `${GATEWAY.v6}/64`, 'dev', VETH, 'nodad'])
    await runOk('ip', ['addr', 'add', `${GATEWAY.v4}/24`, 'dev', VETH])
    await runOk('ip', ['link', 'set', VETH, 'up'])
    const snd = (...args: string[]): Promise<string> => this.inNs('ip', args)
    await snd('link', 'set', 'lo', 'up')
    await snd('-6', 'addr', 'add', `${SENDER.v6}/64`, 'dev', 'eth0', 'nodad')
    await snd('addr', 'add', `${SENDER.v4}/24`, 'dev', 'eth0')
    await snd('link', 'set', 'eth0', 'up')
    await snd('-6', 'route', 'add', 'default', 'via', GATEWAY.v6)
    await snd('route', 'add', 'default', 'via', GATEWAY.v4)
    // dnsmasq binds the new veth address asynchronously (bind-dynamic): wait until it answers.
    await poll(async () => ((await run('ip', ['netns', 'exec', this.ns, 'getent', 'ahosts', 'v4mx.rcpt.test'])).code === 0 ? true : undefined), 5000, 'DNS from the sender namespace')
  }

  private async postfix(extra: Record<string, string>): Promise<void> {
    const masterCf = fs.readFileSync(MASTER_CF_FIXTURE, 'utf8')
    await this.instance.start(mainCf(this.base, extra), masterCf, (cmd, args) => this.inNs(cmd, args))
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
    await this.inNs(SENDMAIL, ['-C', this.configDir, '-i', '-f', o.from, '--', ...to], { input: text })
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
    // Anything else still in the namespace was started by us (postfix children, sendmail).
    const pids = (await run('ip', ['netns', 'pids', this.ns])).stdout.split(/\s+/).filter(Boolean).map(Number)
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    await run('ip', ['link', 'del', VETH])
    if (process.env.MX6_TESTBED_PID) await this.hostNetns('del', this.ns).catch(() => undefined)
    fs.rmSync(`/etc/netns/${this.ns}`, { recursive: true, force: true })
    fs.rmSync(this.base, { recursive: true, force: true })
  }
}
