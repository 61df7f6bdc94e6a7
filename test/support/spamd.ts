// A private, throw-away SpamAssassin spamd (never the machine's own instance): local tests only
// (-L: no DNS blocklists, no Razor/Pyzor, no network), no per-user config (-x), TCP on a free
// loopback port, pid file and log in a temp dir. It runs in the foreground as our child (no -d),
// so the PID we hold is spamd's parent; its one pre-forked child (user nobody) exits by itself
// when the parent goes.
//
// Start-up parses and compiles the rule set: ~2-2.5 s on the test machine (a scan then takes
// ~0.1 s). Start one server per test file (mocha before/after), not one per test.
//
// spamassassinIni() writes haraka-plugin-spamassassin's config/spamassassin.ini for a server.
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { IniSections, renderIni } from './clamd'
import { freePort } from './net'
import { childPids, poll, procStat, sleep, spawnOwned, stopChild, tempDir } from './proc'

const HOST = '127.0.0.1'

/** GTUBE: every SpamAssassin scores a message containing it +1000 (rule GTUBE). */
export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'

export interface SpamdReply {
  /** e.g. 'SPAMD/1.1 0 EX_OK' */
  status: string
  /** Response headers, e.g. {Spam: 'False ; 2.7 / 5.0', 'Content-length': '...'} */
  headers: Record<string, string>
  /** Parsed from the Spam: header. */
  isSpam: boolean
  score: number
  threshold: number
  /** The body after the blank line (the message for PROCESS, rule names for SYMBOLS, ...). */
  body: string
}

/** One spamc-protocol request (command + headers + optional message); resolves the whole reply. */
function request(port: number, cmd: string, message?: Buffer, headers: Record<string, string> = {}, timeoutMs = 30000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port })
    const chunks: Buffer[] = []
    let settled = false
    const finish = (err: Error | null): void => {
      if (settled) return
      settled = true
      s.destroy()
      if (err) reject(err)
      else resolve(Buffer.concat(chunks).toString('latin1'))
    }
    s.once('connect', () => {
      const hdrs = { ...headers }
      if (message) hdrs['Content-length'] = String(message.length)
      const head = [`${cmd} SPAMC/1.5`, ...Object.entries(hdrs).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n')
      s.write(head)
      if (message) s.write(message)
      // spamd reads Content-length bytes; half-closing tells it no more is coming either way.
      s.end()
    })
    s.on('data', (d: Buffer) => chunks.push(d))
    s.once('end', () => finish(null))
    s.once('error', (e) => finish(new Error(`spamd ${HOST}:${port} ${cmd}: ${e.message}`)))
    s.setTimeout(timeoutMs, () => finish(new Error(`spamd ${HOST}:${port} ${cmd}: no reply after ${timeoutMs} ms`)))
  })
}

const toBuffer = (m: Buffer | string): Buffer => (typeof m === 'string' ? Buffer.from(m) : m)

function parseReply(raw: string): SpamdReply {
  const sep = raw.indexOf('\r\n\r\n')
  const head = (sep >= 0 ? raw.slice(0, sep) : raw).split('\r\n')
  const body = sep >= 0 ? raw.slice(sep + 4) : ''
  const status = head.shift() ?? ''
  if (!/^SPAMD\/\d\.\d+ 0 /.test(status)) throw new Error(`spamd error reply: ${raw.slice(0, 500)}`)
  const headers: Record<string, string> = {}
  for (const l of head) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i)] = l.slice(i + 1).trim()
  }
  const m = /^(True|False|Yes|No) ; (-?[\d.]+) \/ (-?[\d.]+)$/.exec(headers.Spam ?? '')
  if (!m) throw new Error(`spamd reply without a Spam: header: ${raw.slice(0, 500)}`)
  return { status, headers, isSpam: m[1] === 'True' || m[1] === 'Yes', score: Number(m[2]), threshold: Number(m[3]), body }
}

export interface SpamdOptions {
  port?: number
  /** Extra spamd arguments, appended last. */
  args?: string[]
  startTimeoutMs?: number
}

export class SpamdServer {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1
  }

  /** host:port as haraka-plugin-spamassassin's `spamd_socket` wants it. */
  get socket(): string {
    return `${HOST}:${this.port}`
  }

  get logFile(): string {
    return path.join(this.dir, 'spamd.log')
  }

  /** Starts spamd and waits until it answers PING (rules are compiled first: ~2-2.5 s). */
  static async start(opts: SpamdOptions = {}): Promise<SpamdServer> {
    const port = opts.port ?? (await freePort(HOST))
    const dir = tempDir('spamd')
    const args = [
      '-L', // --local: no network tests
      '-x', // --nouser-config: no ~/.spamassassin of whichever user
      '-i', HOST, '-p', String(port),
      '-A', HOST, // --allowed-ips
      // spamd refuses to scan as root; its children drop to nobody. The parent (root) opens the
      // log and pid file, so they can stay in our root-only temp dir.
      '-u', 'nobody',
      '-r', path.join(dir, 'spamd.pid'),
      '-s', path.join(dir, 'spamd.log'),
      // One pre-forked child: enough for tests, keeps memory and start-up low.
      '--min-children', '1', '--max-children', '1', '--min-spare', '0', '--max-spare', '1',
      ...(opts.args ?? []),
    ]
    // In the foreground spamd copies its log to stderr: keep that apart (early errors land there).
    const outFd = fs.openSync(path.join(dir, 'spamd.out'), 'a')
    const child = spawnOwned('spamd', args, { stdio: ['ignore', outFd, outFd] })
    fs.closeSync(outFd)
    const server = new SpamdServer(port, dir, child)
    const deadline = Date.now() + (opts.startTimeoutMs ?? 30000)
    while (!(await server.ping())) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await server.stop()
        const out = fs.readFileSync(path.join(dir, 'spamd.out'), 'utf8')
        throw new Error(`spamd on port ${port} did not answer PING:\n${out.slice(-2000)}`)
      }
      await sleep(50)
    }
    return server
  }

  /** True on `SPAMD/1.5 0 PONG`. */
  async ping(): Promise<boolean> {
    try {
      return /^SPAMD\/[\d.]+ 0 PONG/.test(await request(this.port, 'PING', undefined, {}, 1000))
    } catch {
      return false
    }
  }

  /** spamc CHECK: score only. */
  async check(message: Buffer | string): Promise<SpamdReply> {
    return parseReply(await request(this.port, 'CHECK', toBuffer(message)))
  }

  /** spamc PROCESS: score plus the message with SpamAssassin's X-Spam-* headers (body). */
  async process(message: Buffer | string): Promise<SpamdReply> {
    return parseReply(await request(this.port, 'PROCESS', toBuffer(message)))
  }

  /** spamd's own log file (-s). */
  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : ''
  }

  /**
   * Messages spamd has scored so far: one `spamd: result:` log line each, whatever the command
   * (CHECK, PROCESS, HEADERS as Haraka sends). PINGs are not counted. spamd writes the line
   * just after its reply: use waitForRequests() after a scan instead of reading this at once.
   */
  requestCount(): number {
    return this.log().split('\n').filter((l) => / spamd: result: /.test(l)).length
  }

  /** Waits until requestCount() >= n; returns the count. */
  waitForRequests(n: number, timeoutMs = 10000): Promise<number> {
    return poll(() => {
      const c = this.requestCount()
      return c >= n ? c : undefined
    }, timeoutMs, `${n} spamd request(s) in ${this.logFile}`)
  }

  /**
   * SIGTERM (spamd signals its children and exits in ~0.1 s), SIGKILL after 5 s. spamd does not
   * wait for its children, so they end as orphans that PID 1 reaps (instantly under a normal
   * init, ~1-1.5 s on the test machine): wait for that too (at most 3 s), so that nothing of
   * ours is left in the process table when stop() returns.
   */
  async stop(): Promise<void> {
    const children = this.children()
    await stopChild(this.child, 'SIGTERM')
    const deadline = Date.now() + 3000
    let killed = false
    for (;;) {
      // Compared by start time too: a PID reused after the reaping is not ours.
      const left = children.filter((c) => stateAndStart(c.pid)?.start === c.start)
      if (left.length === 0 || Date.now() > deadline) break
      if (!killed && Date.now() > deadline - 1000) {
        killed = true
        for (const c of left) {
          if (stateAndStart(c.pid)?.state === 'Z') continue // exited, only not reaped yet
          try {
            process.kill(c.pid, 'SIGKILL')
          } catch {
            // already gone
          }
        }
      }
      await sleep(50)
    }
  }

  /** spamd's current children (from /proc), with their start times. */
  private children(): { pid: number; start: string }[] {
    const pid = this.child.pid
    if (pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return []
    return childPids(pid).flatMap((p) => {
      const st = stateAndStart(p)
      return st ? [{ pid: p, start: st.start }] : []
    })
  }
}

/** State letter and start time (clock ticks since boot) of a process. */
function stateAndStart(pid: number): { state: string; start: string } | undefined {
  const f = procStat(pid)
  return f && { state: f[0], start: f[19] }
}

/**
 * config/spamassassin.ini for haraka-plugin-spamassassin 1.1.x talking to `server`. Defaults
 * (all overridable, null removes a key):
 * - [main] spamd_socket=127.0.0.1:<port>; reject_threshold=10 and relay_reject_threshold=10
 *   (the plugin rejects nothing without them: `550 spam score exceeded threshold`; GTUBE scores
 *   1000, an ordinary test message ~0-3); connect_timeout=5 and results_timeout=30 (plugin
 *   defaults 30 and 300 s: a stopped spamd should fail a test fast); add_headers=true (X-Spam-*
 *   headers merged into the message); old_headers_action=rename (incoming X-Spam-* become
 *   X-Old-Spam-*); max_size=500000 (larger messages are not scored).
 * - [check] every key true: the plugin's own defaults, which mean "score": private, loopback
 *   and local peers ARE scored unless a test sets e.g. {check: {private_ip: false}}. Beware:
 *   Haraka (haraka-net-utils 1.9.3) counts the IPv4 documentation nets 192.0.2.0/24,
 *   198.51.100.0/24 and 203.0.113.0/24 as private, so with private_ip=false the IPv4 test peers
 *   are skipped too; only the IPv6 peers (2001:db8:7::/64, not private there) stay scored.
 * - [defer] error/connect_timeout/scan_timeout=false (plugin defaults): when spamd is down the
 *   message is accepted unscored; set them true to answer 451 instead.
 */
export function spamassassinIni(server: { port: number }, overrides: IniSections = {}): string {
  return renderIni(
    {
      main: {
        spamd_socket: `${HOST}:${server.port}`,
        reject_threshold: 10,
        relay_reject_threshold: 10,
        connect_timeout: 5,
        results_timeout: 30,
        add_headers: true,
        old_headers_action: 'rename',
        modern_status_syntax: 1,
        max_size: 500000,
      },
      check: { authenticated: true, relay: true, private_ip: true, local_ip: true },
      defer: { error: false, connect_timeout: false, scan_timeout: false },
    },
    overrides,
  )
}
