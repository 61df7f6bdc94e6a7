#!/usr/bin/env node
// `npm run bench`: what the suite costs Haraka, side by side with Haraka alone,
// in one run on this machine, loopback and test-namespace addresses only.
// Prints a table and PASS/FAIL per budget, and writes the figures as JSON.
import fs from 'node:fs'
import os from 'node:os'
import { Redis } from 'ioredis'
import type { HarakaServer } from '../../test/support/haraka'
import { requireTestbed } from '../../test/support/net'
import { cpuMs, rssMiB, runOk } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { budgets, type Row, type Scale } from './budgets'
import { chartSvg } from './chart'
import { options, usage, whole } from './cli'
import { concurrentRounds, startHaraka, type Config } from './configs'
import { fill, seed } from './lists'
import { benchMessage, drive, PATHS, type LoadResult, type Path } from './load'
import { panels, printTable } from './report'
import { decisionTimes, fmt, loopDelays, percentile, probeRtts } from './stats'
import { syncImport, syncLines } from './sync-import'

/**
 * Haraka alone listens on PORT, Haraka with the suite on PORT + 1, the same with the peer
 * list cache off on PORT + 2; all three run all the time.
 */
const PORT = 2600
/** The concurrent rounds' own processes (see concurrentRounds) listen on FRESH_PORT and the next four. */
const FRESH_PORT = PORT + 10

const HELP = `Usage: npm run bench [-- --quick] [-- --out FILE] [-- --no-pin] [-- --paths P,...] [-- --rounds N]

Runs Haraka with and without haraka-mx6 side by side (same run, same machine,
load rounds alternating between processes that stay up throughout) inside
the test namespace (needs root, like npm test) and reports throughput, CPU time
per message of Haraka and of Redis, how busy Haraka was, decision latency,
Redis commands and reads per message, scaling with list size and memory, with
a verdict per budget; then mx6ctl sync of a generated 1,000,000-line provider
file (20,000 with --quick), first import and a re-import with 1 % changed:
lines/s, wall time, peak RSS of mx6ctl, how long its apply script held Redis,
beside pipelined HSETs of the same entries (Redis alone).
--quick: a few seconds per path, small counts, no timing budgets judged (CI
smoke mode); every configuration still runs and must give the path's replies.
--out: JSON file (default bench-results.json); the chart (SVG) is written
beside it, with .svg for .json. --no-pin: do not pin
Haraka to CPU 1 and the load generators, Redis and rspamd to CPU 0 (pinning
needs two CPUs and taskset). --paths: only these paths (default all: ipv4,
ipv6-allowed, ipv6-allowed-uncached, ipv6-deferred, ipv6-dkim). --rounds:
measured rounds per path and configuration (default 4; more rounds average out
more of the machine's drift). The "rounds" column gives the lowest and highest
ratio of single round pairs: how far the machine drifted while the ratio was
measured.
With several sessions (Haraka's CPU the bottleneck) the same number of rounds
is also run with every configuration loaded at once on the same CPU, each
round with fresh processes warmed with as many messages as it measures:
Haraka alone; a second Haraka alone (the A/A control); Haraka with the suite;
on ipv6-deferred and ipv6-allowed-uncached Haraka with the contract's floor
(scripts/bench/fixtures/floor-*.js: only what the contract asks of that
decision, through the suite's own code) in the suite's place; and the same
policy built with rspamd (haraka-plugin-rspamd in place of spf, dkim and the
suite, in front of a private rspamd from test/fixtures/rspamd/ with the same
lists). The suite and the floor each have a Redis of their own there. Reported:
each one's throughput relative to Haraka alone (Haraka alone's CPU time per
message over its own, a ratio the machine's drift cannot tilt) and its total
CPU per message (Haraka + its Redis, or + rspamd). The A/A spread (the
control's largest deviation from 1 in one round) is the resolution: a budget
met is PASS, one missed by more than the spread FAIL, one missed by less
"within the spread". Budgets: suite / floor >= 0.97 on the floor's paths;
with/without >= 0.99 on ipv4 and >= 0.95 on ipv6-allowed and ipv6-dkim; the
suite's total CPU per message at most half the rspamd setup's on every IPv6
path; at most one Redis round trip per decision phase; decision latency p99
within 3 Redis round trips; 1,000,000 vs 10 list entries. Exit status 1 on a
FAIL, or on a configuration giving a reply other than its path's.
`

interface Options {
  quick: boolean
  out: string
  pin: boolean
  paths: Path[]
  rounds: number
}

function readOptions(argv: string[]): Options {
  const { values } = options('bench', HELP, argv, { quick: { type: 'boolean' }, out: { type: 'string' }, 'no-pin': { type: 'boolean' }, rounds: { type: 'string' }, paths: { type: 'string' } })
  let paths = [...PATHS]
  if (values.paths !== undefined) {
    const want = values.paths.split(',').filter(Boolean)
    const bad = want.filter((p) => !(PATHS as string[]).includes(p))
    if (bad.length || want.length === 0) usage('bench', `unknown path ${bad.join(', ') || '(none given)'}; paths: ${PATHS.join(', ')}`)
    paths = want as Path[]
  }
  return { quick: !!values.quick, out: values.out ?? 'bench-results.json', pin: !values['no-pin'], paths, rounds: whole('bench', '--rounds', values.rounds, 4, 100) }
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

/** Calls and microseconds per command so far, from the commandstats section of Redis's INFO. */
function commandStats(info: string): Record<string, { calls: number; usec: number }> {
  return Object.fromEntries([...info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/gm)].map((m) => [m[1], { calls: Number(m[2]), usec: Number(m[3]) }]))
}

async function commandTimes(r: RedisServer): Promise<Record<string, { calls: number; usec: number }>> {
  return commandStats(await r.cli('INFO', 'commandstats'))
}

/** The configurations whose processes stay up for the alternating rounds. */
type Served = Extract<Config, 'haraka' | 'haraka+mx6' | 'haraka+mx6 uncached'>

function portOf(config: Served): number {
  return { haraka: PORT, 'haraka+mx6': PORT + 1, 'haraka+mx6 uncached': PORT + 2 }[config]
}

/**
 * Haraka on CPU 1; this process, and so Redis and the load generators it starts, on CPU 0:
 * Haraka's own capacity is measured, not its share of two cores fought over by everything.
 */
async function pin(pid: number, cpu: number): Promise<void> {
  await runOk('taskset', ['-a', '-p', '-c', String(cpu), String(pid)])
}

async function main(): Promise<number> {
  const o = readOptions(process.argv.slice(2))
  requireTestbed()
  const pinned = o.pin && os.availableParallelism() >= 2
  if (pinned) await pin(process.pid, 0)
  // Per path and configuration: `rounds` rounds of `one` (1 session) or `many` messages.
  const counts = o.quick ? { one: 20, many: 60, rounds: 1, sessions: [1, 5], sizes: [10, 1000], scale: 30 } : { one: 1500, many: 3000, rounds: o.rounds, sessions: [1, 50], sizes: [10, 10000, 1000000], scale: 1500 }
  const redis = await RedisServer.start()
  const rows: Row[] = []
  const report: Record<string, unknown> = { quick: o.quick, date: new Date().toISOString(), counts, pinned }
  try {
    // The idle reference: this client on the other CPU than Redis, nothing else running.
    if (pinned) await pin(process.pid, 1)
    const rtt = await redisRtt(redis.port, o.quick ? 200 : 2000)
    if (pinned) await pin(process.pid, 0)
    report.redisRoundTripMs = rtt
    await seed(redis.port)
    const signed = await benchMessage()

    const memory: Record<string, number> = {}
    // All configurations run at once and the load alternates between them in
    // rounds (ABBA order), so drift in what else the machine does hits both alike.
    // The cache-off configuration runs only for its own path. The concurrent rounds (and
    // their A/A control, a second Haraka alone) start processes of their own.
    const configs: Served[] = ['haraka', 'haraka+mx6', ...(o.paths.includes('ipv6-allowed-uncached') ? ['haraka+mx6 uncached' as const] : [])]
    const ready = async (h: HarakaServer): Promise<void> => {
      if (pinned) await pin(h.pid, 1)
    }
    const servers = {} as Record<Served, HarakaServer>
    for (const c of configs) {
      servers[c] = await startHaraka(c, { port: portOf(c), probePort: redis.port })
      await ready(servers[c])
    }
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
          const concurrent = sessions > 1 ? await concurrentRounds(p, pair[1], { port: FRESH_PORT, probePort: redis.port, sessions, messages, rounds: counts.rounds, signed }, ready) : undefined
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
        const haraka = await startHaraka('haraka+mx6 uncached', { port: PORT + 3 + i, probePort: redis.port, extraIni: 'undecided=defer\n', prefix })
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
    // mx6ctl sync of a generated provider file, beside pipelined HSETs of the same entries (Redis alone).
    const sync = await syncImport(redis.port, o.quick ? 20_000 : 1_000_000)
    for (const l of syncLines(sync)) process.stdout.write(`${l}\n`)
    report.syncImport = sync
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


main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`)
    process.exit(1)
  },
)
