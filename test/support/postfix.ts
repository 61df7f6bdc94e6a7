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
import path from 'node:path'
import { requireTestbed } from './net'
import { own, disown, poll, run, runOk, sleep, tempDir } from './proc'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const POSTFIX = '/usr/sbin/postfix'
const SENDMAIL = '/usr/sbin/sendmail'
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
  const settings: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: path.join(base, 'spool'),
    data_directory: path.join(base, 'data'),
    maillog_file: path.join(base, 'maillog'),
    // postlogd only writes below these prefixes.
    maillog_file_prefixes: base,
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
  }
  return Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n'
}

export class PostfixSender {
  private masterPid = -1

  private constructor(
    readonly ns: string,
    /** Holds etc/ (config_directory), spool/, data/ and maillog. */
    readonly base: string,
  ) {}

  get configDir(): string {
    return path.join(this.base, 'etc')
  }

  get logFile(): string {
    return path.join(this.base, 'maillog')
  }

  /** `mainCf` overrides or adds main.cf settings (e.g. { smtp_mx_session_limit: '3' }). */
  static async start(opts: { mainCf?: Record<string, string> } = {}): Promise<PostfixSender> {
    const ns = `${requireTestbed()}-snd`
    if (fs.existsSync(`/run/netns/${ns}`)) {
      throw new Error(`PostfixSender: ${ns} exists; only one sender at a time (stop() the previous one)`)
    }
    const base = tempDir('postfix')
    // Postfix daemons run as user postfix: mkdtemp's 0700 would lock them out of their queue.
    fs.chmodSync(base, 0o755)
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
    fs.mkdirSync(this.configDir, { recursive: true })
    fs.writeFileSync(path.join(this.configDir, 'main.cf'), mainCf(this.base, extra))
    fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'postfix', 'master.cf'), path.join(this.configDir, 'master.cf'))
    // Postfix re-reads a main.cf modified within the last second in 300 ms steps "to let it
    // settle" (dict_load_file): backdating it saves ~2 s for every Postfix command.
    const past = new Date(Date.now() - 60_000)
    for (const f of ['main.cf', 'master.cf']) fs.utimesSync(path.join(this.configDir, f), past, past)
    // `postfix start` first runs `postfix check`, ~1.5 s of shell. Creating the queue and data
    // directories the way postfix-files lists them and dropping a quick-start marker skips it.
    createPostfixDirs({ $queue_directory: path.join(this.base, 'spool'), $data_directory: path.join(this.base, 'data') })
    fs.writeFileSync(path.join(this.base, 'spool', 'quick-start'), '')
    await this.inNs(POSTFIX, ['-c', this.configDir, 'start'])
    const pidFile = path.join(this.base, 'spool', 'pid', 'master.pid')
    this.masterPid = await poll(() => {
      const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) : 0
      return pid > 0 ? pid : undefined
    }, 5000, 'Postfix master.pid')
    own(this.masterPid)
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
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : ''
  }

  /** Stops Postfix and removes the namespace, veth, /etc/netns entry and files. Safe to repeat. */
  async stop(): Promise<void> {
    if (this.masterPid > 0) {
      // What `postfix stop` does, minus its 1 s polling: SIGTERM the master and wait.
      const pid = this.masterPid
      if (alive(pid)) process.kill(pid, 'SIGTERM')
      for (let i = 0; i < 100 && alive(pid); i++) await sleep(50)
      if (alive(pid)) process.kill(pid, 'SIGKILL')
      disown(pid)
      this.masterPid = -1
    }
    // Anything else still in the namespace was started by us (postfix children, sendmail).
    const pids = (await run('ip', ['netns', 'pids', this.ns])).stdout.split(/\s+/).filter(Boolean).map(Number)
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    await run('ip', ['link', 'del', VETH])
    if (process.env.MX6_TESTBED_PID) await this.hostNetns('del', this.ns).catch(() => undefined)
    fs.rmSync(`/etc/netns/${this.ns}`, { recursive: true, force: true })
    fs.rmSync(this.base, { recursive: true, force: true })
  }
}

/** mkdir/chown/chmod the `d` entries of /etc/postfix/postfix-files under the given roots. */
function createPostfixDirs(roots: Record<string, string>): void {
  const ids = (file: string): Map<string, number> =>
    new Map(fs.readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')).filter((f) => f.length > 2).map((f) => [f[0], Number(f[2])]))
  const users = ids('/etc/passwd')
  const groups = ids('/etc/group')
  const owner = { $mail_owner: 'postfix', $setgid_group: 'postdrop' } as Record<string, string>
  for (const line of fs.readFileSync('/etc/postfix/postfix-files', 'utf8').split('\n')) {
    const [name, type, user, group, mode] = line.split(':')
    const root = Object.keys(roots).find((r) => name === r || name?.startsWith(`${r}/`))
    if (type !== 'd' || !root) continue
    const dir = roots[root] + name.slice(root.length)
    fs.mkdirSync(dir, { recursive: true })
    const uid = users.get(owner[user] ?? user)
    const gid = group === '-' ? 0 : groups.get(owner[group] ?? group)
    if (uid === undefined || gid === undefined) throw new Error(`postfix-files: unknown owner in ${line}`)
    fs.chownSync(dir, uid, gid)
    fs.chmodSync(dir, parseInt(mode, 8))
  }
}

/** True while the process runs; a zombie counts as gone (this machine's init reaps slowly). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}
