// OpenSMTPD (Debian's opensmtpd, unpacked by scripts/prepare.sh, never installed) as a sending
// MTA in the sender namespace, with a config of its own.
//
// What it took (docs/interop.md): its paths are compiled in (queue /var/spool/smtpd, chroot
// /var/lib/opensmtpd/empty, control socket /var/run/smtpd.sock) and so are its users
// (opensmtpd, opensmtpq): it runs in a private mount namespace where private directories are
// bind-mounted over /var/spool, /var/lib and /run and passwd/group have those users
// (private-users.ts). Its retry delay is compiled in too (minutes), so the test asks for a
// queue run with `smtpctl schedule all` instead.
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { poll, run, spawnOwned, stopChild, tempDir } from '../proc'
import { SENDER, SenderNetns } from '../sender-netns'
import { submitSmtp, SUBMIT_PORT } from './exim'
import { privateUsers } from './private-users'
import { opensmtpdView } from './logs'
import { INTEROP_ROOT, type InteropSender, type SenderView, type Submission } from './types'

const SMTPD = path.join(INTEROP_ROOT, 'usr', 'sbin', 'smtpd')
const SMTPCTL = path.join(INTEROP_ROOT, 'usr', 'sbin', 'smtpctl')
/** opensmtpd / opensmtpq in the private passwd (ids no Debian package allocates). */
const USERS = [
  { name: 'opensmtpd', uid: 64911, home: '/var/lib/opensmtpd/empty' },
  { name: 'opensmtpq', uid: 64912, home: '/var/lib/opensmtpd/empty' },
]

function config(): string {
  return `# OpenSMTPD as an interop sender (test bed only)
listen on ${SENDER.v6} port ${SUBMIT_PORT} hostname ${SENDER.hostname}
# Forced queue runs (smtpctl schedule) make it send its 4-hour delay warning at once.
bounce warn-interval 3d
action "out" relay helo ${SENDER.hostname}
match from any for any action "out"
`
}

export class OpenSmtpdSender implements InteropSender {
  readonly name = 'opensmtpd'
  private constructor(
    private readonly netns: SenderNetns,
    private readonly base: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<OpenSmtpdSender> {
    if (!fs.existsSync(SMTPD)) throw new Error(`${SMTPD} missing: run bash scripts/prepare.sh testbed`)
    const netns = await SenderNetns.create()
    const base = tempDir('opensmtpd')
    fs.chmodSync(base, 0o755)
    // smtpd checks these: root-owned, not writable by others; it creates the queue below spool/smtpd.
    for (const d of ['spool/smtpd', 'lib/opensmtpd/empty', 'run']) fs.mkdirSync(path.join(base, d), { recursive: true, mode: 0o755 })
    fs.chmodSync(path.join(base, 'spool/smtpd'), 0o711)
    fs.writeFileSync(path.join(base, 'smtpd.conf'), config())
    const users = privateUsers(base, USERS, { [path.join(base, 'spool')]: '/var/spool', [path.join(base, 'lib')]: '/var/lib', [path.join(base, 'run')]: '/run' })
    // -d: foreground, log to stderr (our log file); -v: one line per delivery attempt and result.
    const logFd = fs.openSync(path.join(base, 'smtpd.log'), 'a')
    const [cmd, ...pre] = netns.prefix()
    const child = spawnOwned(cmd, [...pre, ...users, SMTPD, '-d', '-v', '-f', path.join(base, 'smtpd.conf')], { stdio: ['ignore', logFd, logFd] })
    fs.closeSync(logFd)
    const sender = new OpenSmtpdSender(netns, base, child)
    try {
      await poll(() => (/offline scanning done/.test(sender.log()) ? true : child.exitCode !== null ? true : undefined), 5000, 'smtpd start')
      if (child.exitCode !== null) throw new Error(`smtpd exited ${child.exitCode}`)
    } catch (err) {
      await sender.stop()
      throw new Error(`${(err as Error).message}\n${sender.log()}`)
    }
    return sender
  }

  async version(): Promise<string> {
    const r = await run(SMTPD, ['-h'])
    return /OpenSMTPD (\S+)/.exec(r.stdout + r.stderr)?.[1] ?? 'unknown'
  }

  async submit(m: Submission): Promise<void> {
    await submitSmtp(SENDER.v6, SUBMIT_PORT, m)
  }

  view(m: Submission): SenderView {
    return opensmtpdView(this.log(), m.from)
  }

  /** Asks for an immediate retry of everything queued (the compiled-in delay is minutes). */
  async kick(): Promise<void> {
    const pid = this.child.pid
    if (!pid) return
    // smtpctl insists on running setgid opensmtpq (the package installs it so): setpriv does that.
    const gid = String(USERS[1].uid)
    const r = await run('nsenter', [`--mount=/proc/${pid}/ns/mnt`, `--net=/proc/${pid}/ns/net`, 'setpriv', `--regid=${gid}`, '--clear-groups', SMTPCTL, 'schedule', 'all'])
    if (r.code !== 0) throw new Error(`smtpctl schedule all: ${r.stderr}${r.stdout}`)
  }

  log(): string {
    const f = path.join(this.base, 'smtpd.log')
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : ''
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGTERM', 2000)
    await this.netns.remove()
  }
}
