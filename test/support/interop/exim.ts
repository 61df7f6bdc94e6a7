// Exim 4 (Debian's exim4-daemon-light, unpacked by scripts/prepare.sh, never installed) as a
// sending MTA in the sender namespace, with a config of its own.
//
// What it took (docs/interop.md): `-C <file>` as root keeps root privilege; the compiled-in
// user Debian-exim (looked up before the config is read) exists only in a private mount
// namespace (private-users.ts); spool, log and pid below a temp dir owned by that user; a retry
// rule of 1 s and a 1 s queue runner; libidn12 installed as an ordinary library.
import fs from 'node:fs'
import path from 'node:path'
import { ChildProcess } from 'node:child_process'
import { poll, spawnOwned, stopChild, tempDir } from '../proc'
import { SENDER, SenderNetns } from '../sender-netns'
import { privateUsers } from './private-users'
import { eximView } from './logs'
import { smtpSession } from '../smtp'
import { INTEROP_ROOT, type InteropSender, type SenderView, type Submission } from './types'

const EXIM = path.join(INTEROP_ROOT, 'usr', 'sbin', 'exim4')
export const SUBMIT_PORT = 2525
/** Debian-exim in the private passwd (an id no Debian package allocates). */
const EXIM_UID = 64901

function config(base: string, pipelining: boolean): string {
  return `# Exim as an interop sender (test bed only)
primary_hostname = ${SENDER.hostname}
# re-exec (queue runner, delivery) of this binary, not the compiled-in /usr/sbin/exim4
exim_path = ${EXIM}
qualify_domain = ${SENDER.hostname}
domainlist local_domains = ${SENDER.hostname}
spool_directory = ${base}/spool
log_file_path = ${base}/log/%slog
pid_file_path = ${base}/exim.pid
local_interfaces = <; ${SENDER.v6}.${SUBMIT_PORT}
keep_environment =
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
acl_smtp_rcpt = acl_rcpt
# every delivery (and each failed host) on its own log line
log_selector = +all -arguments
begin acl
acl_rcpt:
  accept
begin routers
local:
  driver = redirect
  domains = +local_domains
  data = :blackhole:
dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  no_more
begin transports
remote_smtp:
  driver = smtp
  hosts_avoid_tls = *
${pipelining ? '' : '  # no QUIT pipelined after the final dot (and no half-close before the reply): see start()\n  hosts_avoid_pipelining = *\n'}  connect_timeout = 5s
begin retry
*  *  F,10m,1s
`
}

export class EximSender implements InteropSender {
  private constructor(
    readonly name: string,
    private readonly netns: SenderNetns,
    private readonly base: string,
    private readonly child: ChildProcess,
  ) {}

  /**
   * `pipelining: false` sets hosts_avoid_pipelining. With Exim's default, QUIT follows the
   * final dot in the same packet and Exim half-closes at once; Haraka 3.3.4 then drops the
   * connection if its after-DATA hooks have not answered yet, so Exim sees no reply at all
   * (docs/interop.md). The tests use it to check the MX6 semantics without that race.
   */
  static async start(opts: { pipelining?: boolean } = {}): Promise<EximSender> {
    const pipelining = opts.pipelining ?? true
    if (!fs.existsSync(EXIM)) throw new Error(`${EXIM} missing: run bash scripts/prepare.sh testbed`)
    const netns = await SenderNetns.create()
    const base = tempDir('exim')
    fs.chmodSync(base, 0o755)
    for (const d of ['spool', 'log']) {
      fs.mkdirSync(path.join(base, d))
      fs.chownSync(path.join(base, d), EXIM_UID, EXIM_UID)
    }
    const users = privateUsers(base, [{ name: 'Debian-exim', uid: EXIM_UID, home: path.join(base, 'spool') }])
    fs.writeFileSync(path.join(base, 'exim.conf'), config(base, pipelining))
    // -bdf: daemon in the foreground; -q1s: a queue runner every second.
    const [cmd, ...pre] = netns.prefix()
    const errFd = fs.openSync(path.join(base, 'stderr'), 'a')
    const child = spawnOwned(cmd, [...pre, ...users, EXIM, '-C', path.join(base, 'exim.conf'), '-bdf', '-q1s'], { stdio: ['ignore', errFd, errFd] })
    fs.closeSync(errFd)
    const sender = new EximSender(pipelining ? 'exim' : 'exim-nopipe', netns, base, child)
    try {
      await poll(() => (sender.log().includes('daemon started') ? true : undefined), 5000, 'exim daemon start')
    } catch (err) {
      await sender.stop()
      const more = ['log/paniclog', 'stderr'].map((f) => path.join(base, f)).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8'))
      throw new Error(`${(err as Error).message}\n${sender.log()}${more.join('\n')}`)
    }
    return sender
  }

  async version(): Promise<string> {
    const users = privateUsers(this.base, [{ name: 'Debian-exim', uid: EXIM_UID, home: path.join(this.base, 'spool') }])
    const out = await this.netns.exec(users[0], [...users.slice(1), EXIM, '-C', path.join(this.base, 'exim.conf'), '-bV'])
    return /Exim version (\S+)/.exec(out)?.[1] ?? 'unknown'
  }

  async submit(m: Submission): Promise<void> {
    await submitSmtp(SENDER.v6, SUBMIT_PORT, m)
  }

  view(m: Submission): SenderView {
    return eximView(this.log(), m.from)
  }

  async kick(): Promise<void> {
    // the 1 s queue runner does it
  }

  log(): string {
    const f = path.join(this.base, 'log', 'mainlog')
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : ''
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGTERM', 2000)
    await this.netns.remove()
  }
}

/** Submits a message over SMTP (from the test namespace) to a sender's listener. */
export async function submitSmtp(host: string, port: number, m: Submission): Promise<void> {
  const data = `From: <${m.from}>\r\nTo: <${m.to}>\r\nSubject: ${m.subject}\r\nMessage-ID: ${m.messageId}\r\nDate: ${new Date().toUTCString()}\r\n\r\nInterop test message.\r\n`
  const r = await smtpSession({ host, port, ehlo: 'submit.other.test', mailFrom: m.from, rcptTo: [m.to], data })
  if (r.dataEnd?.code !== 250) throw new Error(`submission to ${host}:${port} failed:\n${r.transcript}`)
}
