#!/usr/bin/env node
// `npm run bench`: what the suite costs Haraka, side by side with Haraka alone,
// in one run on this machine, loopback and test-namespace addresses only.
// Prints a table and PASS/FAIL per budget, and writes the figures as JSON.
import fs from 'node:fs'
import os from 'node:os'
import { Redis } from 'ioredis'
import { HarakaServer } from '../../test/support/haraka'
import { requireTestbed } from '../../test/support/net'
import { cpuMs, rssMiB, runOk } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { chartSvg, niceTicks, type Panel } from './chart'
import { benchMessage, drive, freshRound, PATHS, QUEUE_PLUGIN, suiteIni, V4, V6, type LoadResult, type Path } from './load'
import { decisionTimes, fmt, loopDelays, percentile, probeRtts } from './stats'

/**
 * Haraka alone listens on PORT, Haraka with the suite on PORT + 1, the same with the peer
 * list cache off on PORT + 2; all three run all the time.
 */
const PORT = 2600
/** The concurrent rounds' own processes (see concurrentRounds) listen on FRESH_PORT and the next two. */
const FRESH_PORT = PORT + 10

const HELP = `Usage: npm run bench [-- --quick] [-- --out FILE] [-- --no-pin] [-- --paths P,...] [-- --rounds N]

Runs Haraka with and without haraka-mx6 side by side (same run, same machine,
load rounds alternating between processes that stay up throughout) inside
the test namespace (needs root, like npm test) and reports throughput, CPU time
per message of Haraka and of Redis, how busy Haraka was, decision latency,
Redis commands and reads per message, scaling with list size and memory, with
PASS/FAIL per budget.
--quick: a few seconds, small counts, no timing budgets asserted (CI smoke
mode). --out: JSON file (default bench-results.json); the chart (SVG) is written
beside it, with .svg for .json. --no-pin: do not pin
Haraka to CPU 1 and the load generators and Redis to CPU 0 (pinning needs two
CPUs and taskset). --paths: only these paths (default all: ipv4, ipv6-allowed,
ipv6-allowed-uncached, ipv6-deferred, ipv6-dkim). --rounds: measured rounds
per path and configuration (default 4; more rounds average out more of the
machine's drift). The "rounds" column gives the lowest and highest ratio of
single round pairs: how far the machine drifted while the ratio was measured.
With several sessions (Haraka's CPU the bottleneck) the same number of rounds
is also run with both configurations loaded at once on the same CPU: the
"concurrent" column is Haraka's CPU time per message without / with the suite
from those rounds, a throughput ratio the machine's drift cannot tilt. A second
Haraka alone takes part in them: the "A/A" column is the same ratio between the
two Harakas alone, how far apart two processes of the same code land, the
resolution of the "concurrent" figure. Each of these rounds starts processes of
its own and warms them with as many messages as it measures, so that how one
process happens to land averages out over the rounds.
`

/**
 * A plugin present in every configuration: Haraka's event-loop delay, and one Redis
 * round trip (a raw PING on its own connection every 10 ms) measured from inside
 * Haraka, under the same load and on the same CPU as the plugin's decisions.
 */
function probe(redisPort: number): string {
  return `const net = require('node:net')
const { monitorEventLoopDelay } = require('node:perf_hooks')
exports.register = function () {
  const h = monitorEventLoopDelay({ resolution: 5 })
  h.enable()
  const rtts = []
  let sent = 0n
  const s = net.connect(${redisPort}, '127.0.0.1')
  s.setNoDelay(true)
  s.on('error', () => undefined)
  s.on('data', () => {
    if (sent) rtts.push((Number(process.hrtime.bigint() - sent) / 1e6).toFixed(3))
    sent = 0n
  })
  setInterval(() => {
    if (sent || s.readyState !== 'open') return
    sent = process.hrtime.bigint()
    s.write('PING\\r\\n')
  }, 10).unref()
  setInterval(() => {
    if (h.count > 0) this.loginfo('eld p99=' + (h.percentile(99) / 1e6).toFixed(3) + ' ms')
    h.reset()
    if (rtts.length) this.loginfo('redis rtt ms=' + rtts.splice(0).join(','))
  }, 250).unref()
}`
}

interface Options {
  quick: boolean
  out: string
  pin: boolean
  paths: Path[]
  rounds: number
}

function options(argv: string[]): Options {
  const o: Options = { quick: false, out: 'bench-results.json', pin: true, paths: [...PATHS], rounds: 4 }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') o.quick = true
    else if (argv[i] === '--out') o.out = argv[++i] ?? o.out
    else if (argv[i] === '--no-pin') o.pin = false
    else if (argv[i] === '--rounds') {
      const n = Number(argv[++i])
      if (!Number.isInteger(n) || n < 1 || n > 100) {
        process.stderr.write(`bench: --rounds wants a whole number from 1 to 100, not ${argv[i] ?? '(nothing)'}\n`)
        process.exit(2)
      }
      o.rounds = n
    }
    else if (argv[i] === '--paths') {
      const want = (argv[++i] ?? '').split(',').filter(Boolean)
      const bad = want.filter((p) => !(PATHS as string[]).includes(p))
      if (bad.length || want.length === 0) {
        process.stderr.write(`bench: unknown path ${bad.join(', ') || '(none given)'}; paths: ${PATHS.join(', ')}\n`)
        process.exit(2)
      }
      o.paths = want as Path[]
    }
    else if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write(HELP)
      process.exit(0)
    } else {
      process.stderr.write(`bench: unknown option ${argv[i]}\n\n${HELP}`)
      process.exit(2)
    }
  }
  return o
}

async function redisRtt(port: number, n: number): Promise<{ p50: number; p99: number }> {
  const c = new Redis({ port, host: '127.0.0.1' })
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint()
    await c.ping()
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  c.disconnect()
  return { p50: percentile(times, 50), p99: percentile(times, 99) }
}

/**
 * Redis's own counters: commands, reads (one per request it read off a socket: a
 * pipeline is one) and follow-up script calls (the records of deferred attempts go out
 * together, several per call under load; each call ends with one ZCARD per follow-up
 * index, two, and none is part of a decision).
 */
async function redisCounters(r: RedisServer): Promise<{ commands: number; reads: number; followups: number }> {
  const stats = await r.cli('INFO', 'stats', 'commandstats')
  const num = (re: RegExp) => Number(re.exec(stats)?.[1] ?? 0)
  const calls = commandStats(stats)
  // Our own INFO call counts as one command and one read, and each probe PING (the bench's
  // plugin, one at a time) as one of each; subtract them.
  const pings = calls.ping?.calls ?? 0
  return { commands: num(/^total_commands_processed:(\d+)/m) - 1 - pings, reads: num(/^total_reads_processed:(\d+)/m) - 1 - pings, followups: (calls.zcard?.calls ?? 0) / 2 }
}

/**
 * Adds entries until the list holds `size`, in batches (HSET with many fields per command),
 * under the key prefix `prefix` (each list size of the scaling rounds has its own).
 */
async function fill(port: number, size: number, prefix = 'mx6:'): Promise<void> {
  const c = new Redis({ port, host: '127.0.0.1' })
  const have = await c.hlen(`${prefix}ip:allow`)
  for (let i = have; i < size; ) {
    const p = c.pipeline()
    for (let b = 0; b < 20 && i < size; b++) {
      const fields: string[] = []
      for (let k = 0; k < 1000 && i < size; k++, i++) fields.push(`2001:db8:${(0x1000 + Math.floor(i / 65536)).toString(16)}:${(i % 65536).toString(16)}::/64`, 'bench filler')
      p.hset(`${prefix}ip:allow`, ...fields)
    }
    await p.exec()
  }
  // Address books, as many members in total as the list has entries (100 per book).
  const books = Math.ceil(size / 100)
  for (let b = 0; b < books; ) {
    const p = c.pipeline()
    for (let k = 0; k < 500 && b < books; k++, b++) p.sadd(`${prefix}book:user${b}@rcpt.test`, ...Array.from({ length: 100 }, (_, m) => `friend${m}@other${b}.test`))
    await p.exec()
  }
  c.disconnect()
}

/** One list size: the decision's latency, Redis's CPU per message, Haraka's RSS. */
interface Scale {
  entries: number
  rcpt: { p50: number; p99: number }
  redisMs: number
  /** Redis's own time per call (INFO commandstats, microseconds): EVALSHA (the lookup and follow-up scripts), and the HMGETs of the lookup script (ip:allow, ip:green). */
  redisUs: { evalsha: number; hmget: number }
  rssMiB: number
}

/** Calls and microseconds per command so far, from the commandstats section of Redis's INFO. */
function commandStats(info: string): Record<string, { calls: number; usec: number }> {
  return Object.fromEntries([...info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/gm)].map((m) => [m[1], { calls: Number(m[2]), usec: Number(m[3]) }]))
}

async function commandTimes(r: RedisServer): Promise<Record<string, { calls: number; usec: number }>> {
  return commandStats(await r.cli('INFO', 'commandstats'))
}

interface Row {
  config: 'haraka' | 'haraka+mx6'
  path: Path
  sessions: number
  load: LoadResult
  /** CPU milliseconds per message: Haraka, and Redis (serving this configuration). */
  cpu: { haraka: number; redis: number }
  /** Haraka's CPU time over wall time during the rounds: 1.0 = one core fully busy. */
  busy: number
  rcpt?: { p50: number; p99: number }
  dataPost?: { p50: number; p99: number }
  /** Redis commands, reads and decision reads (reads less follow-up script calls) per message. */
  perMessage?: { commands: number; reads: number; decisionReads: number }
  eldP99?: number
  /** One Redis round trip measured from inside this Haraka during the same rounds. */
  probeRtt?: { p50: number; p99: number }
  /** With the suite: the throughput ratio of each round pair (how much the machine drifted). */
  roundRatios?: number[]
  /**
   * With the suite, several sessions: Haraka's CPU time per message without / with the
   * suite, both loaded at the same time on the same CPU (overall, and per round).
   */
  concurrent?: Concurrent
}

interface Concurrent {
  /** Haraka's CPU time per message without / with the suite, over all rounds, and per round. */
  ratio: number
  rounds: number[]
  /**
   * The same ratio between Haraka alone and a second, identical Haraka alone loaded in the
   * same rounds (an A/A control): how far apart two processes of the same code land, the
   * resolution of the ratio above.
   */
  control: { ratio: number; rounds: number[] }
}

type Config = 'haraka' | 'haraka+mx6' | 'haraka+mx6 uncached' | 'haraka (control)'

/**
 * Several sessions keep Haraka's CPU busy, so throughput follows its CPU time per message.
 * Here both configurations take the same load at the same time, on the same CPU: whatever
 * the machine's speed does, it does to both at the same moments (alternating rounds see it
 * drift between them). Returns Haraka's CPU per message without / with the suite, and the
 * same between Haraka alone and the A/A control (a second Haraka alone, loaded alike).
 *
 * Each round has processes of its own, started for it and warmed with as many messages as
 * it measures: two processes of the same code have landed up to a few per cent apart,
 * and fresh ones each round let that average out over the rounds instead of tilting all
 * of them the same way; nor does any of them carry more history than another.
 */
async function concurrentRounds(p: Path, pair: Served[], start: (config: Config, port: number) => Promise<HarakaServer>, sessions: number, messages: number, rounds: number, signed: Buffer): Promise<Concurrent> {
  // Haraka alone first: each ratio is its CPU over another's.
  const loaded: Config[] = [...pair, 'haraka (control)']
  const ports = loaded.map((_, i) => FRESH_PORT + i)
  const cpu = loaded.map(() => 0)
  const suite: number[] = []
  const control: number[] = []
  for (let round = 0; round < rounds; round++) {
    const { cpuMs: used } = await freshRound(loaded.map((c) => (port: number) => start(c, port)), ports, p, sessions, messages, signed)
    used.forEach((u, i) => (cpu[i] += u))
    suite.push(used[0] / used[1])
    control.push(used[0] / used[2])
  }
  return { ratio: cpu[0] / cpu[1], rounds: suite, control: { ratio: cpu[0] / cpu[2], rounds: control } }
}

/** The configurations whose processes stay up for the alternating rounds. */
type Served = Exclude<Config, 'haraka (control)'>

function portOf(config: Served): number {
  return { haraka: PORT, 'haraka+mx6': PORT + 1, 'haraka+mx6 uncached': PORT + 2 }[config]
}

async function startHaraka(config: Config, redisPort: number, extraIni: string, port: number, prefix = 'mx6:'): Promise<HarakaServer> {
  const withSuite = config !== 'haraka' && config !== 'haraka (control)'
  return HarakaServer.start({
    listen: [`[${V6}]:${port}`, `${V4}:${port}`],
    plugins: ['bench-eld', 'spf', 'dkim', ...(withSuite ? ['mx6-receive'] : []), 'rcpt_to.in_host_list', 'bench-queue'],
    pluginFiles: { 'bench-queue': QUEUE_PLUGIN, 'bench-eld': probe(redisPort) },
    config: { 'mx6-receive.ini': suiteIni(redisPort, { main: extraIni, prefix, uncached: config === 'haraka+mx6 uncached' }) },
  })
}

/**
 * Haraka on CPU 1; this process, and so Redis and the load generators it starts, on CPU 0:
 * Haraka's own capacity is measured, not its share of two cores fought over by everything.
 */
async function pin(pid: number, cpu: number): Promise<void> {
  await runOk('taskset', ['-a', '-p', '-c', String(cpu), String(pid)])
}

async function main(): Promise<number> {
  const o = options(process.argv.slice(2))
  requireTestbed()
  const pinned = o.pin && os.availableParallelism() >= 2
  if (pinned) await pin(process.pid, 0)
  // Per path and configuration: `rounds` rounds of `one` (1 session) or `many` messages.
  const counts = o.quick ? { one: 20, many: 60, rounds: 2, sessions: [1, 5], sizes: [10, 1000], scale: 30 } : { one: 1500, many: 3000, rounds: o.rounds, sessions: [1, 50], sizes: [10, 10000, 1000000], scale: 1500 }
  const redis = await RedisServer.start()
  const rows: Row[] = []
  const report: Record<string, unknown> = { quick: o.quick, date: new Date().toISOString(), counts, pinned }
  try {
    // The idle reference: this client on the other CPU than Redis, nothing else running.
    if (pinned) await pin(process.pid, 1)
    const rtt = await redisRtt(redis.port, o.quick ? 200 : 2000)
    if (pinned) await pin(process.pid, 0)
    report.redisRoundTripMs = rtt
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:25::/48', 'smtp-source peers (bench)')
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'DKIM-signed bench messages')
    const signed = await benchMessage()
    await fill(redis.port, 10)

    const memory: Record<string, number> = {}
    // All configurations run at once and the load alternates between them in
    // rounds (ABBA order), so drift in what else the machine does hits both alike.
    // The cache-off configuration runs only for its own path. The concurrent rounds (and
    // their A/A control, a second Haraka alone) start processes of their own.
    const configs: Served[] = ['haraka', 'haraka+mx6', ...(o.paths.includes('ipv6-allowed-uncached') ? ['haraka+mx6 uncached' as const] : [])]
    const startPinned = async (c: Config, port: number): Promise<HarakaServer> => {
      const h = await startHaraka(c, redis.port, '', port)
      if (pinned) await pin(h.pid, 1)
      return h
    }
    const servers = {} as Record<Served, HarakaServer>
    for (const c of configs) servers[c] = await startPinned(c, portOf(c))
    try {
      for (const sessions of counts.sessions) {
        for (const p of o.paths) {
          const pair: Served[] = ['haraka', p === 'ipv6-allowed-uncached' ? 'haraka+mx6 uncached' : 'haraka+mx6']
          const messages = sessions === 1 ? counts.one : counts.many
          const acc = Object.fromEntries(pair.map((c) => [c, { seconds: 0, codes: {} as Record<string, number>, haraka: 0, redis: 0, cmds: 0, reads: 0, followups: 0, log: '' }]))
          // One unmeasured round first: JIT, DNS and peer list caches warm in both.
          for (const config of pair) await drive(p, portOf(config), sessions, Math.min(messages, 100), signed)
          const roundRatios: number[] = []
          for (let round = 0; round < counts.rounds; round++) {
            const seconds: Record<string, number> = {}
            for (const config of round % 2 === 0 ? pair : [...pair].reverse()) {
              const h = servers[config]
              const before = h.logSize()
              const c0 = await redisCounters(redis)
              const h0 = cpuMs(h.pid)
              const r0 = cpuMs(redis.pid)
              const load = await drive(p, portOf(config), sessions, messages, signed)
              const a = acc[config]
              a.haraka += cpuMs(h.pid) - h0
              a.redis += cpuMs(redis.pid) - r0
              const c1 = await redisCounters(redis)
              a.cmds += c1.commands - c0.commands
              a.reads += c1.reads - c0.reads
              a.followups += c1.followups - c0.followups
              a.seconds += load.seconds
              seconds[config] = load.seconds
              for (const [code, n] of Object.entries(load.codes)) a.codes[code] = (a.codes[code] ?? 0) + n
              a.log += h.logSince(before)
            }
            roundRatios.push(seconds[pair[0]] / seconds[pair[1]])
          }
          const concurrent = sessions > 1 ? await concurrentRounds(p, pair, startPinned, sessions, messages, counts.rounds, signed) : undefined
          const total = messages * counts.rounds
          for (const config of pair) {
            const a = acc[config]
            const withSuite = config !== 'haraka'
            const load: LoadResult = { messages: total, seconds: a.seconds, perSecond: total / a.seconds, codes: a.codes }
            const rtts = probeRtts(a.log)
            const row: Row = { config: withSuite ? 'haraka+mx6' : 'haraka', path: p, sessions, load, cpu: { haraka: a.haraka / total, redis: a.redis / total }, busy: a.haraka / 1000 / a.seconds, eldP99: Math.max(...loopDelays(a.log), 0), probeRtt: { p50: percentile(rtts, 50), p99: percentile(rtts, 99) } }
            if (withSuite && p !== 'ipv4') {
              // Each decision is logged at info with its time; a recipient left pending at RCPT
              // and the after-DATA repetition of a RCPT verdict are not decisions (debug level).
              const r = decisionTimes(a.log, 'rcpt')
              const d = decisionTimes(a.log, 'data_post')
              if (r.length) row.rcpt = { p50: percentile(r, 50), p99: percentile(r, 99) }
              if (d.length) row.dataPost = { p50: percentile(d, 50), p99: percentile(d, 99) }
            }
            if (withSuite) {
              // Each follow-up script call is one read of its own with one session (nothing
              // else is sent at that moment), so the rest are decision reads. With several
              // sessions that split is not known (n/a).
              row.perMessage = { commands: a.cmds / total, reads: a.reads / total, decisionReads: sessions === 1 ? (a.reads - a.followups) / total : NaN }
              row.roundRatios = roundRatios
              row.concurrent = concurrent
            }
            rows.push(row)
            process.stdout.write(`  ${config.padEnd(19)} ${p.padEnd(21)} ${String(sessions).padStart(2)} sessions: ${fmt(load.perSecond, 1)} msg/s, CPU per message ${fmt(row.cpu.haraka, 3)} ms Haraka (busy ${fmt(row.busy * 100, 0)} %) + ${fmt(row.cpu.redis, 3)} ms Redis ${JSON.stringify(load.codes)}\n`)
          }
        }
      }
      for (const config of ['haraka', 'haraka+mx6'] as const) memory[config] = rssMiB(servers[config].pid)
    } finally {
      for (const h of Object.values(servers)) await h.stop()
    }
    report.memoryMiB = memory

    // Scaling: a decision Redis must answer (cache off, undecided=defer: every unknown
    // peer's 129 prefixes are looked up in ip:allow and ip:green and miss, then the 4xx at
    // RCPT) with the lists at each size. Each size has its own key prefix in the same Redis
    // and its own Haraka, all up at once, and the load alternates between them in rounds
    // (rotating order), so the machine's drift hits every size alike.
    const scaling: Scale[] = []
    const sized: Array<{ entries: number; haraka: HarakaServer; times: number[]; redisMs: number; cmd: Record<string, { calls: number; usec: number }> }> = []
    try {
      for (const [i, size] of counts.sizes.entries()) {
        const prefix = `mx6s${i}:`
        await fill(redis.port, size, prefix)
        const haraka = await startHaraka('haraka+mx6 uncached', redis.port, 'undecided=defer\n', PORT + 3 + i, prefix)
        sized.push({ entries: Number(await redis.cli('HLEN', `${prefix}ip:allow`)), haraka, times: [], redisMs: 0, cmd: {} })
        if (pinned) await pin(haraka.pid, 1)
      }
      for (let i = 0; i < sized.length; i++) await drive('ipv6-deferred', PORT + 3 + i, 1, Math.min(counts.scale, 100), signed)
      const perRound = Math.ceil(counts.scale / counts.rounds)
      for (let round = 0; round < counts.rounds; round++) {
        for (let k = 0; k < sized.length; k++) {
          const i = (round + k) % sized.length
          const z = sized[i]
          const before = z.haraka.logSize()
          const t0 = await commandTimes(redis)
          const r0 = cpuMs(redis.pid)
          await drive('ipv6-deferred', PORT + 3 + i, 1, perRound, signed)
          z.redisMs += cpuMs(redis.pid) - r0
          // What Redis itself spent per call on this size's lookups (the script, and the HMGETs in it).
          for (const [cmd, t] of Object.entries(await commandTimes(redis))) {
            const a = (z.cmd[cmd] ??= { calls: 0, usec: 0 })
            a.calls += t.calls - (t0[cmd]?.calls ?? 0)
            a.usec += t.usec - (t0[cmd]?.usec ?? 0)
          }
          z.times.push(...decisionTimes(z.haraka.logSince(before), 'rcpt'))
        }
      }
      for (const z of sized) {
        const redisMs = z.redisMs / (perRound * counts.rounds)
        const perCall = (cmd: string) => (z.cmd[cmd]?.calls ? z.cmd[cmd].usec / z.cmd[cmd].calls : NaN)
        const redisUs = { evalsha: perCall('evalsha'), hmget: perCall('hmget') }
        scaling.push({ entries: z.entries, rcpt: { p50: percentile(z.times, 50), p99: percentile(z.times, 99) }, redisMs, redisUs, rssMiB: rssMiB(z.haraka.pid) })
        process.stdout.write(`  scaling: ${z.entries} entries: rcpt p50 ${fmt(percentile(z.times, 50), 3)} ms, Redis CPU ${fmt(redisMs, 3)} ms/msg, RSS ${fmt(rssMiB(z.haraka.pid), 1)} MiB\n`)
      }
    } finally {
      for (const z of sized) await z.haraka.stop()
    }
    report.scaling = scaling
    report.rows = rows
    const verdicts = budgets(rows, rtt, scaling, memory, o.quick)
    report.budgets = verdicts
    printTable(rows, rtt, scaling, memory, verdicts, pinned)
    fs.writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`)
    const svg = o.out.replace(/(\.json)?$/, '.svg')
    fs.writeFileSync(svg, chartSvg(`haraka-mx6 benchmark${o.quick ? ' (--quick: small counts, no budgets)' : ''}, ${report.date as string}`, panels(rows, scaling, memory, o.quick)))
    process.stdout.write(`\nfigures written to ${o.out}, chart to ${svg}\n`)
    return o.quick || verdicts.every((v) => v.pass) ? 0 : 1
  } finally {
    await redis.stop()
  }
}

interface Budget {
  name: string
  measured: string
  pass: boolean
}

/** Each path and session count measured in both configurations: the two rows, the alternating ratio and the budget. */
function pairs(rows: Row[]): Array<{ path: Path; sessions: number; a: Row; b: Row; ratio: number; min: number }> {
  const out: Array<{ path: Path; sessions: number; a: Row; b: Row; ratio: number; min: number }> = []
  const find = (config: Row['config'], p: Path, s: number) => rows.find((r) => r.config === config && r.path === p && r.sessions === s)
  for (const sessions of [...new Set(rows.map((r) => r.sessions))]) {
    for (const path of PATHS) {
      const a = find('haraka', path, sessions)
      const b = find('haraka+mx6', path, sessions)
      if (a && b) out.push({ path, sessions, a, b, ratio: b.load.perSecond / a.load.perSecond, min: path === 'ipv4' ? 0.99 : 0.95 })
    }
  }
  return out
}

function budgets(rows: Row[], rtt: { p50: number; p99: number }, scaling: Scale[], memory: Record<string, number>, quick: boolean): Budget[] {
  const out: Budget[] = []
  for (const { path: p, sessions: s, b, ratio, min } of pairs(rows)) {
    out.push({ name: `throughput ${p}, ${s} session(s): with/without >= ${fmt(min, 2)}`, measured: fmt(ratio, 3), pass: ratio >= min })
    const c = b.concurrent
    if (c) out.push({ name: `throughput ${p}, ${s} sessions, concurrent rounds (Haraka CPU per message without/with) >= ${fmt(min, 2)}`, measured: `${fmt(c.ratio, 3)} (rounds ${fmt(Math.min(...c.rounds), 3)}-${fmt(Math.max(...c.rounds), 3)}; A/A control ${fmt(c.control.ratio, 3)})`, pass: c.ratio >= min })
  }
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.perMessage && x.sessions === 1 && x.path !== 'ipv4')) {
    // Two decision phases per message at most (rcpt, whose lookups start at MAIL, and
    // data_post): one read each, plus the once-a-second counter flush. The follow-up
    // records of deferred attempts (one script call for several) are not decision reads.
    const m = r.perMessage!
    out.push({ name: `Redis decision reads per message on ${r.path} <= 2 (one round trip per phase)`, measured: `${fmt(m.decisionReads, 2)} (${fmt(m.reads, 2)} reads in all, ${fmt(m.commands, 2)} commands)`, pass: m.decisionReads <= 2.05 })
  }
  // One Redis round trip: measured from inside the same Haraka during the same rounds
  // (the probe plugin), and, for reference, from an idle client before the runs.
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.sessions === 1 && (x.rcpt || x.dataPost))) {
    const floor = r.probeRtt?.p99 ?? NaN
    for (const [phase, t] of [['rcpt', r.rcpt], ['data_post', r.dataPost]] as const) {
      if (!t) continue
      out.push({ name: `decision latency p99, ${r.path} ${phase} (1 session) <= 3 x Redis round trip p99 in Haraka`, measured: `${fmt(t.p99, 3)} ms vs 3 x ${fmt(floor, 3)} ms (idle client: ${fmt(rtt.p99, 3)} ms)`, pass: t.p99 <= 3 * floor })
    }
  }
  if (scaling.length >= 2) {
    const small = scaling[0]
    const big = scaling.at(-1)!
    const ratio = big.rcpt.p50 / small.rcpt.p50
    out.push({ name: `decision latency ${big.entries} vs ${small.entries} entries <= 1.2`, measured: fmt(ratio, 3), pass: ratio <= 1.2 })
    out.push({ name: `Redis CPU per decision, ${big.entries} vs ${small.entries} entries (reported)`, measured: `${fmt(big.redisMs, 3)} / ${fmt(small.redisMs, 3)} ms`, pass: true })
    const grow = big.rssMiB / small.rssMiB
    out.push({ name: `Haraka RSS ${big.entries} vs ${small.entries} entries unchanged (<= 1.1)`, measured: `${fmt(big.rssMiB, 1)} / ${fmt(small.rssMiB, 1)} MiB`, pass: grow <= 1.1 })
  }
  out.push({ name: 'Haraka RSS with/without the suite (reported)', measured: `${fmt(memory['haraka+mx6'], 1)} / ${fmt(memory.haraka, 1)} MiB`, pass: true })
  if (quick) for (const b of out) b.pass = true
  return out
}

/**
 * The chart's panels: throughput ratio per path against its budget, latency by list size,
 * memory. In --quick mode the budgets are drawn but no verdict is given (nothing is asserted).
 */
function panels(rows: Row[], scaling: Scale[], memory: Record<string, number>, quick: boolean): Panel[] {
  const ratios: Panel['rows'] = pairs(rows).map(({ path: p, sessions: s, b, ratio, min }) => ({
    label: `${p}, ${s} session${s === 1 ? '' : 's'}`,
    dots: [
      { value: ratio, series: 'msg/s with / without (alternating rounds)' },
      ...(b.concurrent ? [{ value: b.concurrent.ratio, series: 'Haraka CPU per message without / with (concurrent rounds)' }, { value: b.concurrent.control.ratio, series: 'the same, Haraka alone / a second Haraka alone (A/A control)' }] : []),
    ],
    budget: min,
    // The figure that counts: the concurrent rounds where there are some (see HELP).
    pass: quick ? undefined : (b.concurrent?.ratio ?? ratio) >= min,
  }))
  const lowest = Math.min(0.8, ...ratios.flatMap((r) => r.dots.map((d) => d.value)).filter(Number.isFinite))
  const from = Math.max(0, Math.floor(lowest * 20) / 20)
  const out: Panel[] = [{ title: 'Throughput with the suite / without (1.00 = no cost)', axis: { min: from, max: 1.05, ticks: niceTicks(from, 1.05, 0.05), unit: '' }, rows: ratios }]
  if (scaling.length) {
    const top = Math.max(...scaling.map((z) => z.rcpt.p99).filter(Number.isFinite), 0.001) * 1.1
    const small = scaling[0].rcpt.p50
    out.push({
      title: 'Decision latency by list size (rcpt, Redis asked every time, 1 session)',
      axis: { min: 0, max: top, ticks: niceTicks(0, top), unit: ' ms' },
      rows: scaling.map((z, i) => ({
        label: `${z.entries.toLocaleString('en')} ip:allow entries`,
        dots: [
          { value: z.rcpt.p50, series: 'p50' },
          { value: z.rcpt.p99, series: 'p99' },
        ],
        // The budget: p50 of the largest list within 1.2 x that of the smallest.
        ...(i === scaling.length - 1 && i > 0 ? { budget: 1.2 * small, pass: quick ? undefined : z.rcpt.p50 <= 1.2 * small } : {}),
      })),
    })
  }
  const rss: Panel['rows'] = [
    { label: 'Haraka alone, after the runs', dots: [{ value: memory.haraka, series: 'RSS' }] },
    { label: 'Haraka + mx6, after the runs', dots: [{ value: memory['haraka+mx6'], series: 'RSS' }] },
    ...scaling.map((z) => ({ label: `Haraka + mx6, ${z.entries.toLocaleString('en')} entries`, dots: [{ value: z.rssMiB, series: 'RSS' }] })),
  ]
  const most = Math.max(...rss.flatMap((r) => r.dots.map((d) => d.value)).filter(Number.isFinite), 1) * 1.1
  out.push({ title: "Haraka's memory (RSS)", axis: { min: 0, max: most, ticks: niceTicks(0, most), unit: ' MiB' }, rows: rss })
  return out
}

function printTable(rows: Row[], rtt: { p50: number; p99: number }, scaling: Scale[], memory: Record<string, number>, verdicts: Budget[], pinned: boolean): void {
  const w = (s: string, n: number) => s.padEnd(n)
  const lines = [
    '',
    pinned ? 'Haraka pinned to CPU 1; Redis and the load generators on CPU 0.' : 'Not pinned: Haraka, Redis and the load generators share the CPUs.',
    `Redis round trip (ioredis PING from an idle client${pinned ? ' on the other CPU' : ''} before the runs): p50 ${fmt(rtt.p50, 3)} ms, p99 ${fmt(rtt.p99, 3)} ms`,
    '',
    `${w('path', 22)}${w('sessions', 9)}${w('haraka msg/s', 14)}${w('+mx6 msg/s', 12)}${w('ratio', 7)}${w('rounds', 13)}${w('concurrent', 11)}${w('A/A', 7)}${w('CPU ms/msg haraka / +mx6 (+redis)', 35)}${w('busy %', 11)}${w('rcpt p50/p99 ms', 18)}${w('data_post p50/p99', 19)}${w('cmds/reads/decision reads', 27)}${w('eld p99 ms', 12)}redis rtt in Haraka p50/p99 ms (haraka / +mx6)`,
  ]
  for (const { path: p, sessions: s, a, b, ratio } of pairs(rows)) {
    lines.push(
      `${w(p, 22)}${w(String(s), 9)}${w(fmt(a.load.perSecond, 1), 14)}${w(fmt(b.load.perSecond, 1), 12)}${w(fmt(ratio, 3), 7)}${w(b.roundRatios?.length ? `${fmt(Math.min(...b.roundRatios), 2)}-${fmt(Math.max(...b.roundRatios), 2)}` : '-', 13)}${w(b.concurrent ? fmt(b.concurrent.ratio, 3) : '-', 11)}${w(b.concurrent ? fmt(b.concurrent.control.ratio, 3) : '-', 7)}` +
        `${w(`${fmt(a.cpu.haraka, 3)} / ${fmt(b.cpu.haraka, 3)} (+${fmt(b.cpu.redis, 3)})`, 35)}${w(`${fmt(a.busy * 100, 0)} / ${fmt(b.busy * 100, 0)}`, 11)}` +
        `${w(b.rcpt ? `${fmt(b.rcpt.p50, 3)}/${fmt(b.rcpt.p99, 3)}` : '-', 18)}${w(b.dataPost && Number.isFinite(b.dataPost.p50) ? `${fmt(b.dataPost.p50, 3)}/${fmt(b.dataPost.p99, 3)}` : '-', 19)}` +
        `${w(b.perMessage ? `${fmt(b.perMessage.commands, 2)}/${fmt(b.perMessage.reads, 2)}/${fmt(b.perMessage.decisionReads, 2)}` : '-', 27)}${w(`${fmt(a.eldP99 ?? NaN, 1)} / ${fmt(b.eldP99 ?? NaN, 1)}`, 12)}${fmt(a.probeRtt?.p50 ?? NaN, 3)}/${fmt(a.probeRtt?.p99 ?? NaN, 3)} / ${fmt(b.probeRtt?.p50 ?? NaN, 3)}/${fmt(b.probeRtt?.p99 ?? NaN, 3)}`,
    )
  }
  lines.push('', 'scaling (unknown IPv6 peers deferred at RCPT, peer list cache off, 1 session; each size its own Haraka and key prefix, in alternating rounds):')
  for (const s of scaling) lines.push(`  ${String(s.entries).padStart(8)} ip:allow entries (+ as many book members): rcpt p50 ${fmt(s.rcpt.p50, 3)} ms, p99 ${fmt(s.rcpt.p99, 3)} ms, Redis CPU ${fmt(s.redisMs, 3)} ms/msg (in Redis per call: EVALSHA, the lookup and follow-up scripts, ${fmt(s.redisUs.evalsha, 1)} us; HMGET of the 129 candidates in ip:allow and ip:green ${fmt(s.redisUs.hmget, 1)} us), Haraka RSS ${fmt(s.rssMiB, 1)} MiB`)
  lines.push('', `memory: Haraka RSS ${fmt(memory.haraka, 1)} MiB without the suite, ${fmt(memory['haraka+mx6'], 1)} MiB with it`, '', 'budgets:')
  for (const v of verdicts) lines.push(`  ${v.pass ? 'PASS' : 'FAIL'}  ${v.name}: ${v.measured}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`)
    process.exit(1)
  },
)
