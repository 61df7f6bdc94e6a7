// A private, throw-away redis-server per test (never the machine's own instance): free port,
// no persistence, data dir in a temp dir. Tests stop/restart it to inject Redis outages.
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { freePort } from './net'
import { runOk, sleep, spawnOwned, stopChild, tempDir } from './proc'

const HOST = '127.0.0.1'

/** One PING over a raw socket: true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port })
    let buf = ''
    const done = (ok: boolean): void => {
      s.destroy()
      resolve(ok)
    }
    s.once('connect', () => s.write('PING\r\n'))
    s.on('data', (d: Buffer) => {
      buf += d.toString()
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
    s.once('error', () => done(false))
    s.setTimeout(1000, () => done(false))
  })
}

export class RedisServer {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private child: ChildProcess,
    private readonly args: string[],
  ) {}

  get pid(): number {
    return this.child.pid ?? -1
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`
  }

  /** Starts redis-server and waits until it answers PING. `args` are extra redis-server options. */
  static async start(opts: { port?: number; args?: string[] } = {}): Promise<RedisServer> {
    const port = opts.port ?? (await freePort(HOST))
    const dir = tempDir('redis')
    const args = opts.args ?? []
    return new RedisServer(port, dir, await RedisServer.spawn(port, dir, args), args)
  }

  private static async spawn(port: number, dir: string, args: string[]): Promise<ChildProcess> {
    const logfile = path.join(dir, 'redis.log')
    // --save '' and --appendonly no: nothing survives a restart, like a fresh outage recovery.
    const argv = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no']
    argv.push('--dir', dir, '--daemonize', 'no', '--logfile', logfile, ...args)
    const child = spawnOwned('redis-server', argv, { stdio: 'ignore' })
    const deadline = Date.now() + 5000
    while (!(await ping(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stopChild(child, 'SIGKILL')
        const log = fs.existsSync(logfile) ? fs.readFileSync(logfile, 'utf8').slice(-2000) : ''
        throw new Error(`redis-server on port ${port} did not start:\n${log}`)
      }
      await sleep(20)
    }
    return child
  }

  /** SIGTERM and wait for the exit (SIGKILL after 5 s). */
  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGTERM')
  }

  /** Stops (if running) and starts again on the same port, empty. */
  async restart(): Promise<void> {
    await this.stop()
    this.child = await RedisServer.spawn(this.port, this.dir, this.args)
  }

  /** Runs redis-cli against this server; returns its output without the trailing newline. */
  async cli(...args: string[]): Promise<string> {
    const out = await runOk('redis-cli', ['-h', HOST, '-p', String(this.port), ...args], { timeoutMs: 10000 })
    return out.replace(/\n$/, '')
  }

  log(): string {
    const f = path.join(this.dir, 'redis.log')
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : ''
  }
}
