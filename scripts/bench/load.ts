// The benchmark's paths and their load, shared by npm run bench and bench:compare:
// Postfix's smtp-source, and a small generator of ours for paths smtp-source cannot
// drive (it gives up on a 4xx after DATA, and it cannot send pre-signed DKIM
// messages or bind public-looking peer addresses).
import fs from 'node:fs'
import path from 'node:path'
import type { HarakaServer } from '../../test/support/haraka'
import { cpuMs, run } from '../../test/support/proc'
import { dkimSign, smtpSession } from '../../test/support/smtp'

/** Haraka's listen addresses in the test namespace (see TESTBED.md): IPv6 and IPv4. */
export const V6 = '2001:db8:25::25'
export const V4 = '198.51.100.25'
const ROOT = path.resolve(__dirname, '..', '..', '..')

/**
 * The source of a Haraka plugin of scripts/bench/fixtures/ (bench-queue: accepts and drops
 * every message; bench-eld: the bench's probe; floor-defer and floor-allow-uncached: the
 * contract's floors), for HarakaOptions.pluginFiles. Read from the source tree: tsc leaves
 * .js files out of dist/.
 */
export function fixturePlugin(name: 'bench-queue' | 'bench-eld' | 'floor-defer' | 'floor-allow-uncached'): string {
  return fs.readFileSync(path.join(ROOT, 'scripts', 'bench', 'fixtures', `${name}.js`), 'utf8')
}

export type Path = 'ipv4' | 'ipv6-allowed' | 'ipv6-allowed-uncached' | 'ipv6-deferred' | 'ipv6-dkim'
/** ipv6-allowed-uncached: the allow-listed path against the suite with the peer list cache off. */
export const PATHS: Path[] = ['ipv4', 'ipv6-allowed', 'ipv6-allowed-uncached', 'ipv6-deferred', 'ipv6-dkim']

export interface LoadResult {
  messages: number
  seconds: number
  perSecond: number
  /** Final reply codes seen (250, 451, ...) and how often. */
  codes: Record<string, number>
}

export async function smtpSource(opts: { v6: boolean; host: string; port: number; sessions: number; messages: number }): Promise<LoadResult> {
  const args = [opts.v6 ? '-6' : '-4', '-s', String(opts.sessions), '-m', String(opts.messages), '-l', '1000', '-f', 'bench@neutral.test', '-t', 'bob@rcpt.test', '-M', 'bench.neutral.test']
  const target = opts.v6 ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`
  const t0 = process.hrtime.bigint()
  const r = await run('smtp-source', [...args, target], { timeoutMs: 600000 })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.code !== 0) throw new Error(`smtp-source failed (${r.code}): ${r.stderr.slice(0, 500)}`)
  return { messages: opts.messages, seconds, perSecond: opts.messages / seconds, codes: { '250': opts.messages } }
}

/**
 * `sessions` workers, each sending its share of `messages` one SMTP session per
 * message from its own peer address (peers(i) gives worker i's address).
 */
export async function ourLoad(opts: { host: string; port: number; sessions: number; messages: number; peer: (worker: number) => string; mailFrom: string; data: string | Buffer | (() => string) }): Promise<LoadResult> {
  const codes: Record<string, number> = {}
  let left = opts.messages
  const t0 = process.hrtime.bigint()
  const worker = async (w: number): Promise<void> => {
    while (left > 0) {
      left--
      const r = await smtpSession({ host: opts.host, port: opts.port, localAddress: opts.peer(w), ehlo: 'bench.neutral.test', mailFrom: opts.mailFrom, rcptTo: ['bob@rcpt.test'], data: typeof opts.data === 'function' ? opts.data() : opts.data, timeoutMs: 60000 })
      const code = String(r.dataEnd?.code ?? r.rcpt[0]?.code ?? r.mail.code)
      codes[code] = (codes[code] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: opts.sessions }, (_, i) => worker(i)))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return { messages: opts.messages, seconds, perSecond: opts.messages / seconds, codes }
}

/**
 * One path's load against Haraka on `port`: smtp-source for IPv4 and the allow-listed peers
 * (2001:db8:25::/48 is in ip:allow), our generator for unknown peers (deferred after DATA)
 * and for the DKIM-signed message of `signed` (allowed.test in domain:allow).
 */
export async function drive(p: Path, port: number, sessions: number, messages: number, signed: Buffer): Promise<LoadResult> {
  switch (p) {
    case 'ipv4':
      return smtpSource({ v6: false, host: V4, port, sessions, messages })
    case 'ipv6-allowed':
    case 'ipv6-allowed-uncached':
      return smtpSource({ v6: true, host: V6, port, sessions, messages })
    case 'ipv6-deferred':
      return ourLoad({ host: V6, port, sessions, messages, peer: (w) => `2001:db8:7::1:${w.toString(16)}`, mailFrom: 'bench@neutral.test', data: () => smtpSourceMessage('bench@neutral.test', 'bob@rcpt.test') })
    case 'ipv6-dkim':
      return ourLoad({ host: V6, port, sessions, messages, peer: (w) => `2001:db8:7::2:${w.toString(16)}`, mailFrom: 'bounce@neutral.test', data: signed })
  }
}

let messages = 0
/** 1,000 octets of body in lines of 80 with CRLF, numbered, as smtp-source -l 1000 sends them. */
const BODY = Array.from({ length: 13 }, (_, i) => `${(i + 1) % 10}${'X'.repeat(i < 12 ? 77 : 37)}\r\n`).join('')

/**
 * The message of a path our generator drives instead of smtp-source (unknown peers,
 * deferred after DATA): what smtp-source sends with -l 1000, so that every path but the
 * DKIM-signed one carries the same message. Headers From, To, Date and a Message-Id of
 * its own per message (a follow-up record then has a Message-ID key to write, as for
 * real mail), then the 1,000-octet body.
 */
export function smtpSourceMessage(from: string, to: string): string {
  messages++
  return `From: <${from}>\r\nTo: <${to}>\r\nDate: ${new Date().toUTCString()}\r\nMessage-Id: <${process.pid.toString(16)}.${messages.toString(16)}@bench.neutral.test>\r\n\r\n${BODY}`
}

/** The DKIM-signed message of the ipv6-dkim path (d=allowed.test, the test key). */
export function benchMessage(): Promise<Buffer> {
  return dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(ROOT, 'test', 'fixtures', 'dkim', 'allowed.test.s1.key'), from: 'news@allowed.test', to: 'bob@rcpt.test', subject: 'bench', body: 'x'.repeat(800) })
}

/**
 * The mx6-receive.ini of the benchmark's Harakas, after `redisPort`. The load's IPv6 peers are
 * addresses of this host: skip_private=false lets the policy run for them too. `main`: more
 * [main] lines; `more`: more sections at the end; `uncached`: the peer list cache off.
 */
export function suiteIni(redisPort: number, o: { main?: string; prefix?: string; uncached?: boolean; more?: string } = {}): string {
  const more = o.more && !o.more.endsWith('\n') ? `${o.more}\n` : (o.more ?? '')
  return `[main]\nskip_private=false\nlint_interval=0\n${o.main ?? ''}[redis]\nport=${redisPort}\nprefix=${o.prefix ?? 'mx6:'}\n${o.uncached ? '[cache]\nentries=0\n' : ''}${more}`
}

/** What the processes of one round (see freshRound) used and answered. */
export interface FreshRound {
  /** Each process's CPU milliseconds over the measured messages. */
  cpuMs: number[]
  /** The same for each process's helpers (its own Redis, rspamd), 0 without. */
  helperMs: number[]
  /** Each process's measured load (its replies among them). */
  loads: LoadResult[]
}

/**
 * A Haraka of a round, or one with helper processes of its own (rspamd, a Redis only it
 * uses) whose CPU time counts for it: helperCpuMs() is theirs so far.
 */
export type Running = Pick<HarakaServer, 'pid' | 'stop'> & { helperCpuMs?: () => number }

/**
 * One round of processes loaded at once on the same CPU (the bench's concurrent rounds,
 * bench:compare): a fresh process from each starter, on its port; all warmed with as many
 * messages as are measured (JIT, DNS and peer list caches), then loaded at once again and
 * their CPU time (and their helpers') over that second load read. The processes are
 * stopped in any case.
 */
export async function freshRound(starts: Array<(port: number) => Promise<Running>>, ports: number[], p: Path, sessions: number, messages: number, signed: Buffer): Promise<FreshRound> {
  const up: Running[] = []
  try {
    for (const [i, start] of starts.entries()) up.push(await start(ports[i]))
    const load = () => Promise.all(ports.map((port) => drive(p, port, sessions, messages, signed)))
    await load()
    const helpers = () => up.map((h) => h.helperCpuMs?.() ?? 0)
    const c0 = up.map((h) => cpuMs(h.pid))
    const h0 = helpers()
    const loads = await load()
    const h1 = helpers()
    return { cpuMs: up.map((h, i) => cpuMs(h.pid) - c0[i]), helperMs: h1.map((x, i) => x - h0[i]), loads }
  } finally {
    for (const h of up) await h.stop()
  }
}
