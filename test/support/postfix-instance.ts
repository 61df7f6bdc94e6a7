// A private Postfix 3.7 instance: what PostfixSender (postfix.ts) and PostfixReceiver
// (postfix-receiver.ts) have in common. One base dir per instance holds etc/ (config_directory),
// spool/ (queue_directory, with master.pid), data/ (data_directory, with master.lock) and the
// maillog, so several instances run side by side without sharing any state.
//
// Start-up shortcuts (a plain `postfix start` takes ~4 s, this ~0.3 s):
// - main.cf/master.cf are backdated: Postfix re-reads a main.cf modified within the last second
//   in 300 ms steps "to let it settle" (dict_load_file), ~2 s for every Postfix command.
// - `postfix start` first runs `postfix check`, ~1.5 s of shell. Creating the queue and data
//   directories the way postfix-files lists them and dropping the quick-start marker skips it.
// Stop: what `postfix stop` does, minus its 1 s polling: SIGTERM to the master, fast poll.
import fs from 'node:fs'
import path from 'node:path'
import { disown, own, poll, sleep, tempDir } from './proc'

export const POSTFIX = '/usr/sbin/postfix'
export const SENDMAIL = '/usr/sbin/sendmail'
const ROOT = path.resolve(__dirname, '..', '..', '..')
/** Debian's service list with chroot "n" everywhere, no pipe transports (see the file). */
export const MASTER_CF_FIXTURE = path.join(ROOT, 'test', 'fixtures', 'postfix', 'master.cf')

/** Runs a Postfix command (e.g. `ip netns exec <ns> postfix ...`); resolves with its stdout. */
export type Exec = (cmd: string, args: string[]) => Promise<string>

/** A fresh base dir. Postfix daemons run as user postfix: mkdtemp's 0700 would lock them out. */
export function postfixBaseDir(prefix: string): string {
  const base = tempDir(prefix)
  fs.chmodSync(base, 0o755)
  return base
}

/** The main.cf settings that tie an instance to its base dir (put them first). */
export function instanceSettings(base: string): Record<string, string> {
  return {
    compatibility_level: '3.6',
    queue_directory: path.join(base, 'spool'),
    data_directory: path.join(base, 'data'),
    maillog_file: path.join(base, 'maillog'),
    // postlogd only writes below these prefixes.
    maillog_file_prefixes: base,
  }
}

export function formatMainCf(settings: Record<string, string>): string {
  return Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n'
}

export class PostfixInstance {
  private pid = -1

  constructor(readonly base: string) {}

  get configDir(): string {
    return path.join(this.base, 'etc')
  }

  get queueDir(): string {
    return path.join(this.base, 'spool')
  }

  get dataDir(): string {
    return path.join(this.base, 'data')
  }

  get logFile(): string {
    return path.join(this.base, 'maillog')
  }

  /** The master's PID while it runs, else -1. */
  get masterPid(): number {
    return this.pid
  }

  /**
   * Writes the config (main.cf must use instanceSettings(base); `files` are more files for
   * etc/, e.g. lookup tables), creates the queue and data directories, runs
   * `postfix -c <etc> start` through `exec` and waits for master.pid.
   */
  async start(mainCf: string, masterCf: string, exec: Exec, files: Record<string, string> = {}): Promise<void> {
    fs.mkdirSync(this.configDir, { recursive: true })
    const past = new Date(Date.now() - 60_000)
    for (const [name, text] of Object.entries({ 'main.cf': mainCf, 'master.cf': masterCf, ...files })) {
      const file = path.join(this.configDir, name)
      fs.writeFileSync(file, text)
      fs.utimesSync(file, past, past)
    }
    createPostfixDirs({ $queue_directory: this.queueDir, $data_directory: this.dataDir })
    fs.writeFileSync(path.join(this.queueDir, 'quick-start'), '')
    await exec(POSTFIX, ['-c', this.configDir, 'start'])
    const pidFile = path.join(this.queueDir, 'pid', 'master.pid')
    this.pid = await poll(() => {
      const pid = fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, 'utf8').trim()) : 0
      return pid > 0 ? pid : undefined
    }, 5000, `Postfix master.pid in ${this.queueDir}`)
    own(this.pid)
  }

  /** SIGTERMs the master (it terminates its children) and waits for it. Safe to repeat. */
  async stopMaster(): Promise<void> {
    if (this.pid <= 0) return
    const pid = this.pid
    if (alive(pid)) process.kill(pid, 'SIGTERM')
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(50)
    if (alive(pid)) process.kill(pid, 'SIGKILL')
    disown(pid)
    this.pid = -1
  }

  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : ''
  }
}

/** uid/gid of a user and a group by name, from /etc/passwd and /etc/group. */
export function systemIds(): { uid: (user: string) => number | undefined; gid: (group: string) => number | undefined } {
  const ids = (file: string): Map<string, number> =>
    new Map(fs.readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')).filter((f) => f.length > 2).map((f) => [f[0], Number(f[2])]))
  const users = ids('/etc/passwd')
  const groups = ids('/etc/group')
  return { uid: (u) => users.get(u), gid: (g) => groups.get(g) }
}

/** mkdir/chown/chmod the `d` entries of /etc/postfix/postfix-files under the given roots. */
export function createPostfixDirs(roots: Record<string, string>): void {
  const ids = systemIds()
  const owner = { $mail_owner: 'postfix', $setgid_group: 'postdrop' } as Record<string, string>
  for (const line of fs.readFileSync('/etc/postfix/postfix-files', 'utf8').split('\n')) {
    const [name, type, user, group, mode] = line.split(':')
    const root = Object.keys(roots).find((r) => name === r || name?.startsWith(`${r}/`))
    if (type !== 'd' || !root) continue
    const dir = roots[root] + name.slice(root.length)
    fs.mkdirSync(dir, { recursive: true })
    const uid = ids.uid(owner[user] ?? user)
    const gid = group === '-' ? 0 : ids.gid(owner[group] ?? group)
    if (uid === undefined || gid === undefined) throw new Error(`postfix-files: unknown owner in ${line}`)
    fs.chownSync(dir, uid, gid)
    fs.chmodSync(dir, parseInt(mode, 8))
  }
}

/** True while the process runs; a zombie counts as gone (this machine's init reaps slowly). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/**
 * SIGKILLs what is left of a stopped master's process group (its daemons share it) and waits
 * until none is left. Seen after the master exited: a forked "master -w" that ignores SIGTERM
 * and sleeps ~1 s (apparently delivering the master's log lines while postlogd is not up yet).
 */
export async function killProcessGroup(pgid: number, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const left = processGroup(pgid)
    if (left.length === 0) return
    if (Date.now() > deadline) throw new Error(`processes of group ${pgid} survive SIGKILL: ${left.join(' ')}`)
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    await sleep(10)
  }
}

/** Live (non-zombie) processes in process group `pgid`. */
export function processGroup(pgid: number): number[] {
  const pids: number[] = []
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8')
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(pgrp) === pgid && state !== 'Z') pids.push(Number(d))
    } catch {
      // gone meanwhile
    }
  }
  return pids
}
