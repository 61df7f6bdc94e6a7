// A real Haraka instance per test: `haraka -i` in a temp dir, our plugins installed the way an
// operator does it (mx6ctl install), a capture queue instead of delivery, then `haraka -c`.
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { parseHostPort } from './net'
import { runOk, sleep, spawnOwned, stopChild, tempDir, poll } from './proc'

/** Repository root: this file runs from dist/test/support/. */
const ROOT = path.resolve(__dirname, '..', '..', '..')
const HARAKA_BIN = path.join(ROOT, 'node_modules', '.bin', 'haraka')

export interface HarakaOptions {
  /** e.g. ['[2001:db8:25::25]:25', '198.51.100.25:25'] */
  listen: string[]
  /** config/plugins, in order; 'queue-capture' is the capture queue from test/fixtures/haraka. */
  plugins: string[]
  /** Extra files under config/: name -> content (e.g. {'mx6-receive.ini': '...'}). */
  config?: Record<string, string>
  /** Extra test plugins: name -> JS source, written to plugins/<name>.js (list them in `plugins`). */
  pluginFiles?: Record<string, string>
  /** config/host_list, default ['rcpt.test']. */
  hostList?: string[]
  startTimeoutMs?: number
  /** Puts the suite into the fresh instance; default `mx6ctl install <dir>`. */
  install?: (dir: string) => Promise<void>
  /** Argv prefix for the Haraka process, e.g. ['ip', 'netns', 'exec', '<ns>'] to run it elsewhere. */
  exec?: string[]
}

/** The JSON sidecar written by queue-capture.js. */
export interface CaptureMeta {
  n: number
  uuid: string
  mail_from: string | null
  rcpt_to: string[]
  helo: string | null
  remote_ip: string
  remote_port: number
  remote_host: string | null
  local_ip: string
  local_port: number
  connection_results: Record<string, unknown> | null
  results: Record<string, unknown> | null
}

export interface Captured {
  raw: string
  meta: CaptureMeta
}

/** Reads the first reply line; resolves true on a 220 banner. */
function banner220(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port })
    const done = (ok: boolean): void => {
      s.destroy()
      resolve(ok)
    }
    s.once('data', (d: Buffer) => {
      const ok = d.toString().startsWith('220')
      if (ok) s.write('QUIT\r\n')
      done(ok)
    })
    s.once('error', () => done(false))
    s.setTimeout(2000, () => done(false))
  })
}

export class HarakaServer {
  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
    private readonly listen: string[],
    private readonly exec: string[] = [],
  ) {}

  get pid(): number {
    return this.child.pid ?? -1
  }

  static async start(opts: HarakaOptions): Promise<HarakaServer> {
    const dir = tempDir('haraka')
    await runOk(process.execPath, [HARAKA_BIN, '-i', dir])
    if (opts.install) await opts.install(dir)
    else await runOk(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'mx6ctl.js'), 'install', dir])
    fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'haraka', 'queue-capture.js'), path.join(dir, 'plugins', 'queue-capture.js'))
    for (const [name, src] of Object.entries(opts.pluginFiles ?? {})) fs.writeFileSync(path.join(dir, 'plugins', `${name}.js`), src)

    const cfg = path.join(dir, 'config')
    const write = (name: string, content: string): void => {
      fs.mkdirSync(path.dirname(path.join(cfg, name)), { recursive: true })
      fs.writeFileSync(path.join(cfg, name), content.endsWith('\n') ? content : `${content}\n`)
    }
    // nodes=0: a single process, so the PID we hold is the server and SIGINT stops it.
    write('smtp.ini', `[main]\nlisten=${opts.listen.join(',')}\nnodes=0\nforce_shutdown_timeout=3\n`)
    write('plugins', opts.plugins.join('\n'))
    write('host_list', (opts.hostList ?? ['rcpt.test']).join('\n'))
    write('log.ini', '[main]\nlevel=info\ntimestamps=true\n')
    write('me', 'mx.rcpt.test')
    for (const [name, content] of Object.entries(opts.config ?? {})) write(name, content)

    return HarakaServer.launch(dir, opts.listen, opts.startTimeoutMs ?? 15000, opts.exec)
  }

  /** Spawns `haraka -c dir` and waits for a 220 banner on every listen address. */
  private static async launch(dir: string, listen: string[], timeoutMs: number, exec: string[] = []): Promise<HarakaServer> {
    const logFd = fs.openSync(path.join(dir, 'haraka.log'), 'a')
    const argv = [...exec, process.execPath, HARAKA_BIN, '-c', dir]
    const child = spawnOwned(argv[0], argv.slice(1), { cwd: dir, stdio: ['ignore', logFd, logFd] })
    fs.closeSync(logFd)
    const server = new HarakaServer(dir, child, listen, exec)
    try {
      const deadline = Date.now() + timeoutMs
      for (const hp of listen) {
        const { host, port } = parseHostPort(hp)
        while (!(await banner220(host, port))) {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error('Haraka exited during start-up')
          if (Date.now() > deadline) throw new Error(`no 220 banner on ${hp}`)
          await sleep(25)
        }
      }
    } catch (err) {
      await server.stop()
      throw new Error(`${(err as Error).message}; log tail:\n${server.log().slice(-4000)}`)
    }
    return server
  }

  /** SIGKILL, as in a crash: Haraka gets no chance to clean up. */
  async kill(): Promise<void> {
    await stopChild(this.child, 'SIGKILL', 0)
  }

  /** A new Haraka process on the same instance directory: config and queue are kept. */
  async restart(timeoutMs = 15000): Promise<HarakaServer> {
    await this.stop()
    return HarakaServer.launch(this.dir, this.listen, timeoutMs, this.exec)
  }

  /** Files waiting in the outbound queue (not counting Haraka's temporary files). */
  queued(): string[] {
    const q = path.join(this.dir, 'queue')
    if (!fs.existsSync(q)) return []
    // A file listed a moment ago may be gone by the time it is looked at (delivered meanwhile).
    const isFile = (f: string): boolean => fs.statSync(path.join(q, f), { throwIfNoEntry: false })?.isFile() ?? false
    return fs.readdirSync(q).filter((f) => !f.startsWith('.') && isFile(f))
  }

  /** Messages accepted so far, in order, with their queue-capture sidecars. */
  captured(): Captured[] {
    const cdir = path.join(this.dir, 'captured')
    if (!fs.existsSync(cdir)) return []
    return fs
      .readdirSync(cdir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => Number(f.slice(0, -5)))
      .sort((a, b) => a - b)
      .map((n) => ({
        raw: fs.readFileSync(path.join(cdir, `${n}.eml`), 'latin1'),
        meta: JSON.parse(fs.readFileSync(path.join(cdir, `${n}.json`), 'utf8')) as CaptureMeta,
      }))
  }

  /** Waits until at least `count` messages were captured. */
  waitForCaptured(count: number, timeoutMs = 10000): Promise<Captured[]> {
    return poll(() => {
      const c = this.captured()
      return c.length >= count ? c : undefined
    }, timeoutMs, `${count} captured message(s) in ${this.dir}`)
  }

  log(): string {
    const f = path.join(this.dir, 'haraka.log')
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : ''
  }

  /** Bytes written to the log so far: a mark for logSince(). */
  logSize(): number {
    return fs.statSync(path.join(this.dir, 'haraka.log'), { throwIfNoEntry: false })?.size ?? 0
  }

  /** The log from byte `mark` (a logSize()) on, without reading what came before. */
  logSince(mark: number): string {
    const fd = fs.openSync(path.join(this.dir, 'haraka.log'), 'r')
    try {
      const buf = Buffer.alloc(Math.max(0, fs.fstatSync(fd).size - mark))
      fs.readSync(fd, buf, 0, buf.length, mark)
      return buf.toString('utf8')
    } finally {
      fs.closeSync(fd)
    }
  }

  /** SIGINT (Haraka ignores SIGTERM unless it is PID 1), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGINT', 5000)
  }
}
