// A private, throw-away rspamd (never the machine's own service) running mx6-receive's policy
// from test/fixtures/rspamd/: the fixture is copied into a temp dir that is also its dbdir,
// rundir and logdir, with the allowlist map files and a worker.inc naming a free loopback port.
// One normal worker by default, no controller, proxy or fuzzy worker.
//
// rspamd runs in the foreground as our child (-f), so the PID we hold is its main process;
// pids() adds its children (the normal workers and the hs_helper) for CPU accounting from
// /proc/<pid>/stat. Start-up compiles the public-suffix list: ~1 s on the test machine.
//
// rspamdIni() writes haraka-plugin-rspamd's config/rspamd.ini for a server.
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { IniSections, renderIni } from './clamd'
import { freePort } from './net'
import { childPids, cpuMs, poll, procStat, sleep, spawnOwned, stopChild, tempDir } from './proc'

const HOST = '127.0.0.1'
/** Repository root: this file runs from dist/test/support/. */
const FIXTURE = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'rspamd')
/** The files the fixture consists of (all copied into the run dir). */
const FIXTURE_FILES = ['rspamd.conf', 'mx6-align.lua', 'exempt.map']
/** The Debian package's service user; workers drop to it when we run as root. */
const RSPAMD_USER = '_rspamd'

export interface RspamdLists {
  /** IPv6 addresses and CIDRs accepted whatever the sender (mx6:ip:allow). */
  ipAllow?: string[]
  /** Domains accepted when the From is authenticated and aligned (mx6:domain:allow). */
  domainAllow?: string[]
}

export interface RspamdOptions extends RspamdLists {
  /** @default a free port on 127.0.0.1 */
  port?: number
  /** Normal worker processes. @default 1 */
  workers?: number
  /** @default 30000 */
  startTimeoutMs?: number
}

/** The JSON rspamd answers on /checkv2 (the part tests look at). */
export interface RspamdResult {
  action: string
  score: number
  symbols: Record<string, { name: string; score: number; options?: string[] }>
  messages?: Record<string, string>
}

/** Headers of a /checkv2 request, as haraka-plugin-rspamd sends them (IP, Helo, From, Rcpt, ...). */
export type CheckHeaders = Record<string, string>

/** uid/gid of a user from /etc/passwd, or undefined. */
function lookupUser(name: string): { uid: number; gid: number } | undefined {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))
  if (!line) return undefined
  const f = line.split(':')
  return { uid: Number(f[2]), gid: Number(f[3]) }
}

/** One HTTP request to the normal worker; resolves status and body. */
function request(port: number, method: string, urlPath: string, headers: Record<string, string>, body?: Buffer, timeoutMs = 10000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path: urlPath, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.once('error', (e) => reject(new Error(`rspamd ${HOST}:${port} ${urlPath}: ${e.message}`)))
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no reply after ${timeoutMs} ms`)))
    req.end(body)
  })
}

/** A map file's content: one entry per line (rspamd ignores '#' comments). */
function mapText(what: string, entries: string[] = []): string {
  return [`# ${what}, written by test/support/rspamd.ts`, ...entries, ''].join('\n')
}

export class RspamdServer {
  /** Children seen so far, with their start times (a reused PID is not ours). */
  private known = new Map<number, string>()

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  /** The main process. */
  get pid(): number {
    return this.child.pid ?? -1
  }

  /** host:port of the normal worker. */
  get socket(): string {
    return `${HOST}:${this.port}`
  }

  get logFile(): string {
    return path.join(this.dir, 'rspamd.log')
  }

  static async start(opts: RspamdOptions = {}): Promise<RspamdServer> {
    const port = opts.port ?? (await freePort(HOST))
    const dir = tempDir('rspamd')
    for (const f of FIXTURE_FILES) fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f))
    fs.writeFileSync(path.join(dir, 'worker.inc'), `bind_socket = "${HOST}:${port}";\ncount = ${opts.workers ?? 1};\n`)
    writeLists(dir, opts)
    // As root, rspamd refuses to run its workers as root: give them the package's user, which
    // must then own the run dir (dbdir, maps, log); as another user, run as that user.
    const asRoot = process.getuid?.() === 0
    const user = asRoot ? lookupUser(RSPAMD_USER) : undefined
    if (asRoot && !user) throw new Error(`rspamd: no ${RSPAMD_USER} user (install the Debian rspamd package)`)
    if (user) {
      fs.chmodSync(dir, 0o750)
      for (const f of ['', ...fs.readdirSync(dir)]) fs.chownSync(path.join(dir, f), user.uid, user.gid)
    }
    const vars = { DBDIR: dir, RUNDIR: dir, LOGDIR: dir, MX6_FIXTURES: dir, MX6_RUN: dir }
    const args = [
      '-f', // foreground: the PID we hold is the main process
      '-c', path.join(dir, 'rspamd.conf'),
      ...(user ? ['-u', RSPAMD_USER, '-g', RSPAMD_USER] : []),
      ...Object.entries(vars).map(([k, v]) => `--var=${k}=${v}`),
    ]
    // Before the log file is open, errors go to stdout/stderr: keep them apart.
    const outFd = fs.openSync(path.join(dir, 'rspamd.out'), 'a')
    const child = spawnOwned('rspamd', args, { stdio: ['ignore', outFd, outFd] })
    fs.closeSync(outFd)
    // Not installed: say so instead of an uncaught 'error' event (ENOENT).
    let spawnError: Error | undefined
    child.once('error', (e) => (spawnError = e))
    const server = new RspamdServer(port, dir, child)
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30000)
    while (!(await server.ping())) {
      if (spawnError) throw new Error(`rspamd: ${spawnError.message} (install the Debian rspamd package: bash scripts/prepare.sh testbed)`)
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await server.stop()
        const out = fs.readFileSync(path.join(dir, 'rspamd.out'), 'utf8')
        throw new Error(`rspamd on port ${port} did not answer /ping:\n${out.slice(-1500)}\n${server.log().slice(-2500)}`)
      }
      await sleep(50)
    }
    server.pids()
    return server
  }

  /** True when the normal worker answers GET /ping. */
  async ping(): Promise<boolean> {
    try {
      const r = await request(this.port, 'GET', '/ping', {}, undefined, 1000)
      return r.status === 200 && r.body.trim() === 'pong'
    } catch {
      return false
    }
  }

  /**
   * Rewrites the allowlist maps (only the lists given). rspamd notices a changed map file within
   * about a second (map_watch_interval in the fixture): wait for a scan to show it.
   */
  setLists(lists: RspamdLists): void {
    writeLists(this.dir, lists)
  }

  /** One /checkv2 scan, e.g. check(msg, {IP: '2001:db8:7::20', From: 'a@neutral.test', Helo: 'x.test'}). */
  async check(message: Buffer | string, headers: CheckHeaders): Promise<RspamdResult> {
    const r = await request(this.port, 'POST', '/checkv2', headers, typeof message === 'string' ? Buffer.from(message) : message, 30000)
    if (r.status !== 200) throw new Error(`rspamd /checkv2: HTTP ${r.status}: ${r.body.slice(0, 500)}`)
    return JSON.parse(r.body) as RspamdResult
  }

  /**
   * The main process and its current children (normal workers, hs_helper), for CPU accounting
   * from /proc/<pid>/stat. Empty once rspamd has stopped.
   */
  pids(): number[] {
    const main = this.child.pid
    if (main === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return []
    const kids = childPids(main)
    for (const p of kids) {
      const start = procStat(p)?.[19]
      if (start && !this.known.has(p)) this.known.set(p, start)
    }
    return [main, ...kids]
  }

  /** User + system CPU of all its processes so far, in ms (a worker respawned meanwhile restarts its count). */
  cpuMs(): number {
    return this.pids().reduce((sum, p) => sum + (cpuMs(p) || 0), 0)
  }

  /** rspamd's own log file. */
  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : ''
  }

  /** Scans logged so far: one `rspamd_task_write_log` line each. */
  scanCount(): number {
    return this.log().split('\n').filter((l) => l.includes('rspamd_task_write_log:')).length
  }

  /** Waits until scanCount() >= n; returns the count. */
  waitForScans(n: number, timeoutMs = 10000): Promise<number> {
    return poll(() => {
      const c = this.scanCount()
      return c >= n ? c : undefined
    }, timeoutMs, `${n} rspamd scan(s) in ${this.logFile}`)
  }

  /**
   * SIGTERM to the main process, which stops its workers and exits (SIGKILL after 5 s); then
   * SIGKILL any child of ours still there, by PID, checked against its start time.
   */
  async stop(): Promise<void> {
    this.pids()
    await stopChild(this.child, 'SIGTERM')
    const deadline = Date.now() + 3000
    for (;;) {
      const left = [...this.known].filter(([p, start]) => procStat(p)?.[19] === start && procStat(p)?.[0] !== 'Z')
      if (left.length === 0) break
      if (Date.now() > deadline) {
        for (const [p] of left) {
          try {
            process.kill(p, 'SIGKILL')
          } catch {
            // already gone
          }
        }
        break
      }
      await sleep(50)
    }
  }
}

/** Writes the map files for the lists given, atomically (rspamd may read them at any time). */
function writeLists(dir: string, lists: RspamdLists): void {
  const files: [string, string, string[] | undefined][] = [
    ['ip-allow.map', 'IPv6 addresses and CIDRs (mx6:ip:allow)', lists.ipAllow],
    ['domain-allow.map', 'domains (mx6:domain:allow)', lists.domainAllow],
  ]
  for (const [name, what, entries] of files) {
    const file = path.join(dir, name)
    if (entries === undefined && fs.existsSync(file)) continue
    const tmp = `${file}.tmp`
    fs.writeFileSync(tmp, mapText(what, entries))
    const st = fs.statSync(dir)
    fs.chownSync(tmp, st.uid, st.gid)
    fs.renameSync(tmp, file)
  }
}

/**
 * config/rspamd.ini for haraka-plugin-rspamd 1.6.x talking to `server`. Defaults (all
 * overridable, null removes a key):
 * - [main] host/port of the server. The plugin sends rspamd the client IP, HELO, PTR name,
 *   MAIL FROM and RCPT TO as request headers with the message (data_post hook).
 * - [soft_reject] enabled=true (plugin default): rspamd's "soft reject" action becomes
 *   DENYSOFT, 451 4.7.1 with rspamd's smtp_message (the fixture's force_actions message).
 * - [defer] error=true, timeout=true: fail-safe like mx6-receive (rspamd down -> 451, not an
 *   accept). The plugin's defaults (false) would accept unscanned mail.
 * - [check] private_ip=true: Haraka counts the IPv4 test nets (192.0.2.0/24 ...) as private and
 *   the plugin would skip them, so rspamd would never see the IPv4 peers whose "no action" the
 *   fixture is meant to show. Loopback (local_ip) stays skipped.
 */
export function rspamdIni(server: { port: number }, overrides: IniSections = {}): string {
  return renderIni(
    {
      main: { host: HOST, port: server.port, timeout: 20 },
      soft_reject: { enabled: true },
      defer: { error: true, timeout: true },
      check: { authenticated: false, relay: false, private_ip: true, local_ip: false },
    },
    overrides,
  )
}
