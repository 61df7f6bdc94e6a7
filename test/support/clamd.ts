// A private, throw-away clamd per test (never the machine's own instance): TCP on a free
// loopback port, its own clamd.conf, log and pid file in a temp dir, and a DatabaseDirectory
// holding only the test signatures of test/fixtures/clamd/ (no downloaded ClamAV database, no
// freshclam, no network). Starts in well under a second.
//
// Test signatures (see test/fixtures/clamd/README.md):
//   CLAMD_TEST_SIGNATURE (a harmless ASCII marker) -> CLAMD_TEST_VIRUS
//   eicar() (the 68-byte EICAR test file)          -> EICAR_VIRUS
//
// clamdIni() writes haraka-plugin-clamd's config/clamd.ini for a server (HarakaServer `config`).
import { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { freePort } from './net'
import { sleep, spawnOwned, stopChild, tempDir } from './proc'

const HOST = '127.0.0.1'
/** Repository root: this file runs from dist/test/support/. */
const ROOT = path.resolve(__dirname, '..', '..', '..')
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'clamd')

/** Any data containing this marker is detected as CLAMD_TEST_VIRUS (mx6test.ndb). */
export const CLAMD_TEST_SIGNATURE = 'MX6-TEST-MALWARE-SIGNATURE-7f3a'
/** clamd's name for CLAMD_TEST_SIGNATURE (custom databases get the .UNOFFICIAL suffix). */
export const CLAMD_TEST_VIRUS = 'MX6.Test.Marker.UNOFFICIAL'
/** clamd's name for eicar() (mx6test.hdb: md5 and size of the EICAR file). */
export const EICAR_VIRUS = 'Test.EICAR.UNOFFICIAL'

/**
 * The 68-byte EICAR anti-virus test file, assembled at run time so that neither this source
 * nor its compiled JS contains the string (a developer's own scanner would flag the file).
 */
export function eicar(): Buffer {
  const parts = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS', '-TEST-FILE!$H+H*']
  return Buffer.from(parts.join(''), 'latin1')
}

export interface ScanResult {
  clean: boolean
  /** The detection name, e.g. 'MX6.Test.Marker.UNOFFICIAL' (undefined when clean). */
  virus?: string
  /** clamd's reply without the trailing NUL, e.g. 'stream: OK'. */
  reply: string
}

/** Sends one z-command (NUL-terminated) plus optional payload; resolves clamd's NUL-terminated reply. */
function command(port: number, cmd: string, payload: Buffer[] = [], timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port })
    const chunks: Buffer[] = []
    let settled = false
    const finish = (err: Error | null, reply?: string): void => {
      if (settled) return
      settled = true
      s.destroy()
      if (err) reject(err)
      else resolve(reply ?? '')
    }
    s.once('connect', () => {
      s.write(`z${cmd}\0`)
      for (const p of payload) s.write(p)
    })
    s.on('data', (d: Buffer) => {
      chunks.push(d)
      const all = Buffer.concat(chunks)
      const nul = all.indexOf(0)
      if (nul >= 0) finish(null, all.subarray(0, nul).toString('latin1'))
    })
    s.once('end', () => finish(null, Buffer.concat(chunks).toString('latin1').replace(/\0$/, '')))
    s.once('error', (e) => finish(new Error(`clamd ${HOST}:${port} ${cmd}: ${e.message}`)))
    s.setTimeout(timeoutMs, () => finish(new Error(`clamd ${HOST}:${port} ${cmd}: no reply after ${timeoutMs} ms`)))
  })
}

/** INSTREAM framing: <uint32 BE length><bytes>... then a zero length. */
function instreamChunks(data: Buffer, chunkSize = 64 * 1024): Buffer[] {
  const out: Buffer[] = []
  for (let off = 0; off < data.length; off += chunkSize) {
    const part = data.subarray(off, off + chunkSize)
    const len = Buffer.alloc(4)
    len.writeUInt32BE(part.length, 0)
    out.push(len, part)
  }
  out.push(Buffer.alloc(4))
  return out
}

export interface ClamdOptions {
  port?: number
  /** Extra clamd.conf lines (e.g. ['StreamMaxLength 1M']); later lines override earlier ones. */
  conf?: string[]
  startTimeoutMs?: number
}

export class ClamdServer {
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1
  }

  /** host:port as haraka-plugin-clamd's `clamd_socket` wants it. */
  get socket(): string {
    return `${HOST}:${this.port}`
  }

  get logFile(): string {
    return path.join(this.dir, 'clamd.log')
  }

  /** Starts clamd in the foreground (our child, so we own its PID) and waits for PING -> PONG. */
  static async start(opts: ClamdOptions = {}): Promise<ClamdServer> {
    const port = opts.port ?? (await freePort(HOST))
    const dir = tempDir('clamd')
    const db = path.join(dir, 'db')
    fs.mkdirSync(db)
    // Only the test signature files: clamd would also load anything else it recognises.
    for (const f of fs.readdirSync(FIXTURES).filter((n) => /\.(hdb|ndb)$/.test(n))) fs.copyFileSync(path.join(FIXTURES, f), path.join(db, f))
    const conf = path.join(dir, 'clamd.conf')
    fs.writeFileSync(
      conf,
      [
        // No User line: runs as the invoking user (root in the test bed), which owns every file here.
        'Foreground yes',
        `TCPSocket ${port}`,
        `TCPAddr ${HOST}`,
        // No LocalSocket line: no Unix socket at all (the system one, if any, is never touched).
        `DatabaseDirectory ${db}`,
        `LogFile ${path.join(dir, 'clamd.log')}`,
        'LogTime yes',
        // One line per scan, clean ones included: scanCount() counts them.
        'LogClean yes',
        `PidFile ${path.join(dir, 'clamd.pid')}`,
        `TemporaryDirectory ${dir}`,
        'MaxThreads 4',
        ...(opts.conf ?? []),
        '',
      ].join('\n'),
    )
    // Foreground clamd also prints its log to stdout/stderr: keep that separate (config errors
    // appear there before LogFile is open).
    const outFd = fs.openSync(path.join(dir, 'clamd.out'), 'a')
    const child = spawnOwned('clamd', ['--config-file', conf], { stdio: ['ignore', outFd, outFd] })
    fs.closeSync(outFd)
    const server = new ClamdServer(port, dir, child)
    const deadline = Date.now() + (opts.startTimeoutMs ?? 10000)
    while (!(await server.ping())) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        await server.stop()
        throw new Error(`clamd on port ${port} did not answer PING:\n${server.output().slice(-2000)}`)
      }
      await sleep(20)
    }
    return server
  }

  /** True when clamd answers PING with PONG. */
  async ping(): Promise<boolean> {
    try {
      return (await command(this.port, 'PING', [], 1000)) === 'PONG'
    } catch {
      return false
    }
  }

  /** Scans `data` over INSTREAM, the way haraka-plugin-clamd sends messages. */
  async scan(data: Buffer | string): Promise<ScanResult> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    const reply = await command(this.port, 'INSTREAM', instreamChunks(buf))
    if (/^stream: OK$/.test(reply)) return { clean: true, reply }
    const m = /^stream: (\S+) FOUND$/.exec(reply)
    if (m) return { clean: false, virus: m[1], reply }
    throw new Error(`unexpected clamd reply: ${JSON.stringify(reply)}`)
  }

  /** Scans clamd has answered so far (LogClean: one log line per result, clean or not). */
  scanCount(): number {
    return this.log().split('\n').filter((l) => /: (OK|\S+ FOUND)$/.test(l)).length
  }

  /** clamd's LogFile. */
  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : ''
  }

  /** LogFile plus what clamd printed on stdout/stderr. */
  private output(): string {
    const f = path.join(this.dir, 'clamd.out')
    return this.log() + (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '')
  }

  /** SIGTERM and wait for the exit (clamd needs up to ~1 s; SIGKILL after 5 s). */
  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGTERM')
  }
}

/** Values for an ini key; null drops a default key. */
export type IniValue = string | number | boolean | null
/** Sections of an ini file: section -> key -> value ('main' is the unnamed top section). */
export type IniSections = Record<string, Record<string, IniValue>>

/** Merges `overrides` into `defaults` (section by section) and renders Haraka's ini syntax. */
export function renderIni(defaults: IniSections, overrides: IniSections = {}): string {
  const merged: IniSections = {}
  for (const src of [defaults, overrides]) {
    for (const [section, keys] of Object.entries(src)) merged[section] = { ...(merged[section] ?? {}), ...keys }
  }
  const out: string[] = []
  for (const [section, keys] of Object.entries(merged)) {
    const lines = Object.entries(keys)
      .filter((kv): kv is [string, string | number | boolean] => kv[1] !== null)
      .map(([k, v]) => `${k}=${String(v)}`)
    if (lines.length === 0) continue
    out.push(`[${section}]`, ...lines, '')
  }
  return out.join('\n')
}

/**
 * config/clamd.ini for haraka-plugin-clamd 1.0.x talking to `server`. Defaults (all overridable,
 * null removes a key):
 * - [main] clamd_socket=127.0.0.1:<port>; timeout=30 (whole scan), connect_timeout=5 (the
 *   plugin's default is 10 s; a stopped clamd should fail a test fast).
 * - [reject] virus=true (reply `550 Message is infected with <name>`), error=true (DENYSOFT
 *   `451 Error connecting to virus scanner` when clamd is unreachable), UNOFFICIAL=true (our
 *   test signatures all end in .UNOFFICIAL; with false they are only tagged X-Haraka-Virus).
 * - [check] every key true: the plugin's own defaults, and they mean "scan": private, loopback
 *   and local peers ARE scanned unless a test sets e.g. {check: {private_ip: false}}. Beware:
 *   Haraka (haraka-net-utils 1.9.3) counts the IPv4 documentation nets 192.0.2.0/24,
 *   198.51.100.0/24 and 203.0.113.0/24 as private, so with private_ip=false the IPv4 test peers
 *   are skipped too; only the IPv6 peers (2001:db8:7::/64, not private there) stay scanned.
 */
export function clamdIni(server: { port: number }, overrides: IniSections = {}): string {
  return renderIni(
    {
      main: { clamd_socket: `${HOST}:${server.port}`, timeout: 30, connect_timeout: 5, only_with_attachments: false },
      reject: { virus: true, error: true, UNOFFICIAL: true },
      check: { authenticated: true, relay: true, private_ip: true, local_ip: true },
    },
    overrides,
  )
}
