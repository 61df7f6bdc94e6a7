#!/usr/bin/env node
// `npm run bench`: what the suite costs Haraka, side by side with Haraka alone,
// in one run on this machine, loopback and test-namespace addresses only.
// Prints a table and PASS/FAIL per budget, and writes the figures as JSON.
import fs from 'node:fs'
import path from 'node:path'
import { Redis } from 'ioredis'
import { HarakaServer } from '../../test/support/haraka'
import { requireTestbed } from '../../test/support/net'
import { cpuMs, rssMiB } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { dkimSign } from '../../test/support/smtp'
import { ourLoad, smtpSource, type LoadResult } from './load'
import { decisionTimes, fmt, loopDelays, percentile } from './stats'

const V6 = '2001:db8:25::25'
const V4 = '198.51.100.25'
/** Haraka alone listens on PORT, Haraka with the suite on PORT + 1; both run all the time. */
const PORT = 2600
const ROOT = path.resolve(__dirname, '..', '..', '..')

const HELP = `Usage: npm run bench [-- --quick] [-- --out FILE]

Runs Haraka with and without haraka-mx6 side by side (same run, same machine,
both processes up all the time, load rounds alternating between them) inside
the test namespace (needs root, like npm test) and reports throughput, CPU time
per message of Haraka and of Redis, decision latency, Redis commands and reads
per message, scaling with list size and memory, with PASS/FAIL per budget.
--quick: a few seconds, small counts, no timing budgets asserted (CI smoke
mode). --out: JSON file (default bench-results.json).
`

const QUEUE = "exports.hook_queue = (next) => next(OK)"
// Haraka's event-loop delay, sampled by a plugin present in both configurations.
const ELD = `const { monitorEventLoopDelay } = require('node:perf_hooks')
exports.register = function () {
  const h = monitorEventLoopDelay({ resolution: 5 })
  h.enable()
  setInterval(() => {
    if (h.count > 0) this.loginfo('eld p99=' + (h.percentile(99) / 1e6).toFixed(3) + ' ms')
    h.reset()
  }, 1000).unref()
}`

interface Options {
  quick: boolean
  out: string
}

function options(argv: string[]): Options {
  const o: Options = { quick: false, out: 'bench-results.json' }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') o.quick = true
    else if (argv[i] === '--out') o.out = argv[++i] ?? o.out
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
 * pipeline is one) and ZADD calls (the follow-up record of a deferred attempt is
 * one write pipeline with one ZADD; it is not part of any decision).
 */
async function redisCounters(r: RedisServer): Promise<{ commands: number; reads: number; followups: number }> {
  const stats = await r.cli('INFO', 'stats', 'commandstats')
  const num = (re: RegExp) => Number(re.exec(stats)?.[1] ?? 0)
  // Our own INFO call counts as one command and one read; subtract it.
  return { commands: num(/^total_commands_processed:(\d+)/m) - 1, reads: num(/^total_reads_processed:(\d+)/m) - 1, followups: num(/^cmdstat_zadd:calls=(\d+)/m) }
}

/** Adds entries until the list holds `size`, in batches (HSET with many fields per command). */
async function fill(port: number, size: number): Promise<void> {
  const c = new Redis({ port, host: '127.0.0.1' })
  const have = await c.hlen('mx6:ip:allow')
  for (let i = have; i < size; ) {
    const p = c.pipeline()
    for (let b = 0; b < 20 && i < size; b++) {
      const fields: string[] = []
      for (let k = 0; k < 1000 && i < size; k++, i++) fields.push(`2001:db8:${(0x1000 + Math.floor(i / 65536)).toString(16)}:${(i % 65536).toString(16)}::/64`, 'bench filler')
      p.hset('mx6:ip:allow', ...fields)
    }
    await p.exec()
  }
  // Address books, as many members in total as the list has entries (100 per book).
  const books = Math.ceil(size / 100)
  for (let b = 0; b < books; ) {
    const p = c.pipeline()
    for (let k = 0; k < 500 && b < books; k++, b++) p.sadd(`mx6:book:user${b}@rcpt.test`, ...Array.from({ length: 100 }, (_, m) => `friend${m}@other${b}.test`))
    await p.exec()
  }
  c.disconnect()
}

type Path = 'ipv4' | 'ipv6-allowed' | 'ipv6-deferred' | 'ipv6-dkim'
const PATHS: Path[] = ['ipv4', 'ipv6-allowed', 'ipv6-deferred', 'ipv6-dkim']

interface Row {
  config: 'haraka' | 'haraka+mx6'
  path: Path
  sessions: number
  load: LoadResult
  /** CPU milliseconds per message: Haraka, and Redis (serving this configuration). */
  cpu: { haraka: number; redis: number }
  rcpt?: { p50: number; p99: number }
  dataPost?: { p50: number; p99: number }
  /** Redis commands, reads and decision reads (reads less follow-up write pipelines) per message. */
  perMessage?: { commands: number; reads: number; decisionReads: number }
  eldP99?: number
}

async function drive(path: Path, port: number, sessions: number, messages: number, signed: Buffer): Promise<LoadResult> {
  switch (path) {
    case 'ipv4':
      return smtpSource({ v6: false, host: V4, port, sessions, messages })
    case 'ipv6-allowed':
      return smtpSource({ v6: true, host: V6, port, sessions, messages })
    case 'ipv6-deferred':
      return ourLoad({ host: V6, port, sessions, messages, peer: (w) => `2001:db8:7::1:${w.toString(16)}`, mailFrom: 'bench@neutral.test', data: 'Subject: bench\r\n\r\nbench\r\n' })
    case 'ipv6-dkim':
      return ourLoad({ host: V6, port, sessions, messages, peer: (w) => `2001:db8:7::2:${w.toString(16)}`, mailFrom: 'bounce@neutral.test', data: signed })
  }
}

async function startHaraka(withSuite: boolean, redisPort: number): Promise<HarakaServer> {
  const port = withSuite ? PORT + 1 : PORT
  return HarakaServer.start({
    listen: [`[${V6}]:${port}`, `${V4}:${port}`],
    plugins: ['bench-eld', 'spf', 'dkim', ...(withSuite ? ['mx6-receive'] : []), 'rcpt_to.in_host_list', 'bench-queue'],
    pluginFiles: { 'bench-queue': QUEUE, 'bench-eld': ELD },
    config: {
      // smtp-source's IPv6 peer is an address of this host: let the policy run for it too.
      'mx6-receive.ini': `[main]\nskip_private=false\nlint_interval=0\n[redis]\nport=${redisPort}\n`,
    },
  })
}

async function main(): Promise<number> {
  const o = options(process.argv.slice(2))
  requireTestbed()
  // Per path and configuration: `rounds` rounds of `one` (1 session) or `many` messages.
  const counts = o.quick ? { one: 20, many: 60, rounds: 2, sessions: [1, 5], sizes: [10, 1000], scale: 30 } : { one: 150, many: 500, rounds: 6, sessions: [1, 50], sizes: [10, 10000, 1000000], scale: 300 }
  const redis = await RedisServer.start()
  const rows: Row[] = []
  const report: Record<string, unknown> = { quick: o.quick, date: new Date().toISOString(), counts }
  try {
    const rtt = await redisRtt(redis.port, o.quick ? 200 : 2000)
    report.redisRoundTripMs = rtt
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:25::/48', 'smtp-source peers (bench)')
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'DKIM-signed bench messages')
    const signed = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(ROOT, 'test', 'fixtures', 'dkim', 'allowed.test.s1.key'), from: 'news@allowed.test', to: 'bob@rcpt.test', subject: 'bench', body: 'x'.repeat(800) })
    await fill(redis.port, 10)

    const memory: Record<string, number> = {}
    // Both configurations run at once and the load alternates between them in
    // rounds (ABBA order), so drift in what else the machine does hits both alike.
    const servers = { haraka: await startHaraka(false, redis.port), 'haraka+mx6': await startHaraka(true, redis.port) }
    try {
      const configs = ['haraka', 'haraka+mx6'] as const
      for (const sessions of counts.sessions) {
        for (const p of PATHS) {
          const messages = sessions === 1 ? counts.one : counts.many
          const acc = Object.fromEntries(configs.map((c) => [c, { seconds: 0, codes: {} as Record<string, number>, haraka: 0, redis: 0, cmds: 0, reads: 0, followups: 0, log: '' }]))
          for (let round = 0; round < counts.rounds; round++) {
            for (const config of round % 2 === 0 ? configs : [...configs].reverse()) {
              const h = servers[config]
              const before = h.log().length
              const c0 = await redisCounters(redis)
              const h0 = cpuMs(h.pid)
              const r0 = cpuMs(redis.pid)
              const load = await drive(p, config === 'haraka' ? PORT : PORT + 1, sessions, messages, signed)
              const a = acc[config]
              a.haraka += cpuMs(h.pid) - h0
              a.redis += cpuMs(redis.pid) - r0
              const c1 = await redisCounters(redis)
              a.cmds += c1.commands - c0.commands
              a.reads += c1.reads - c0.reads
              a.followups += c1.followups - c0.followups
              a.seconds += load.seconds
              for (const [code, n] of Object.entries(load.codes)) a.codes[code] = (a.codes[code] ?? 0) + n
              a.log += h.log().slice(before)
            }
          }
          const total = messages * counts.rounds
          for (const config of configs) {
            const a = acc[config]
            const withSuite = config === 'haraka+mx6'
            const load: LoadResult = { messages: total, seconds: a.seconds, perSecond: total / a.seconds, codes: a.codes }
            const row: Row = { config, path: p, sessions, load, cpu: { haraka: a.haraka / total, redis: a.redis / total }, eldP99: Math.max(...loopDelays(a.log), 0) }
            if (withSuite && p !== 'ipv4') {
              const r = decisionTimes(a.log, 'rcpt')
              const d = decisionTimes(a.log, 'data_post')
              row.rcpt = { p50: percentile(r, 50), p99: percentile(r, 99) }
              row.dataPost = { p50: percentile(d, 50), p99: percentile(d, 99) }
            }
            if (withSuite) row.perMessage = { commands: a.cmds / total, reads: a.reads / total, decisionReads: (a.reads - a.followups) / total }
            rows.push(row)
            process.stdout.write(`  ${config.padEnd(10)} ${p.padEnd(13)} ${String(sessions).padStart(2)} sessions: ${fmt(load.perSecond, 1)} msg/s, CPU per message ${fmt(row.cpu.haraka, 3)} ms Haraka + ${fmt(row.cpu.redis, 3)} ms Redis ${JSON.stringify(load.codes)}\n`)
          }
        }
      }
      for (const config of configs) memory[config] = rssMiB(servers[config].pid)
    } finally {
      for (const h of Object.values(servers)) await h.stop()
    }
    report.memoryMiB = memory

    // Scaling: the same decision path with the lists at each size, a fresh Haraka each time.
    const scaling: Array<{ entries: number; rcpt: { p50: number; p99: number }; rssMiB: number }> = []
    for (const size of counts.sizes) {
      await fill(redis.port, size)
      const haraka = await startHaraka(true, redis.port)
      try {
        const before = haraka.log().length
        await drive('ipv6-deferred', PORT + 1, 1, counts.scale, signed)
        const r = decisionTimes(haraka.log().slice(before), 'rcpt')
        scaling.push({ entries: Number(await redis.cli('HLEN', 'mx6:ip:allow')), rcpt: { p50: percentile(r, 50), p99: percentile(r, 99) }, rssMiB: rssMiB(haraka.pid) })
        process.stdout.write(`  scaling: ${scaling.at(-1)!.entries} entries: rcpt p50 ${fmt(scaling.at(-1)!.rcpt.p50, 3)} ms, RSS ${fmt(scaling.at(-1)!.rssMiB, 1)} MiB\n`)
      } finally {
        await haraka.stop()
      }
    }
    report.scaling = scaling
    report.rows = rows
    const verdicts = budgets(rows, rtt, scaling, memory, o.quick)
    report.budgets = verdicts
    printTable(rows, rtt, scaling, memory, verdicts)
    fs.writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`)
    process.stdout.write(`\nfigures written to ${o.out}\n`)
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

function budgets(rows: Row[], rtt: { p50: number; p99: number }, scaling: Array<{ entries: number; rcpt: { p50: number; p99: number }; rssMiB: number }>, memory: Record<string, number>, quick: boolean): Budget[] {
  const out: Budget[] = []
  const find = (config: Row['config'], p: Path, s: number) => rows.find((r) => r.config === config && r.path === p && r.sessions === s)
  for (const s of [...new Set(rows.map((r) => r.sessions))]) {
    for (const p of PATHS) {
      const a = find('haraka', p, s)
      const b = find('haraka+mx6', p, s)
      if (!a || !b) continue
      const ratio = b.load.perSecond / a.load.perSecond
      out.push({ name: `throughput ${p}, ${s} session(s): with/without >= ${p === 'ipv4' ? '0.99' : '0.95'}`, measured: fmt(ratio, 3), pass: ratio >= (p === 'ipv4' ? 0.99 : 0.95) })
    }
  }
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.perMessage && x.sessions === 1 && x.path !== 'ipv4')) {
    // Two decision phases per message at most (rcpt, whose lookups start at MAIL, and
    // data_post): one read each, plus the once-a-second counter flush. The follow-up
    // record of a deferred attempt (one write pipeline) is not a decision read.
    const m = r.perMessage!
    out.push({ name: `Redis decision reads per message on ${r.path} <= 2 (one round trip per phase)`, measured: `${fmt(m.decisionReads, 2)} (${fmt(m.reads, 2)} reads in all, ${fmt(m.commands, 2)} commands)`, pass: m.decisionReads <= 2.05 })
  }
  const one = rows.filter((r) => r.config === 'haraka+mx6' && r.sessions === 1 && r.rcpt)
  const p99 = Math.max(...one.map((r) => Math.max(r.rcpt!.p99, Number.isFinite(r.dataPost!.p99) ? r.dataPost!.p99 : 0)))
  out.push({ name: 'decision latency p99 (1 session) <= 3 x Redis round trip p99', measured: `${fmt(p99, 3)} ms vs 3 x ${fmt(rtt.p99, 3)} ms`, pass: p99 <= 3 * rtt.p99 })
  if (scaling.length >= 2) {
    const small = scaling[0]
    const big = scaling.at(-1)!
    const ratio = big.rcpt.p50 / small.rcpt.p50
    out.push({ name: `decision latency ${big.entries} vs ${small.entries} entries <= 1.2`, measured: fmt(ratio, 3), pass: ratio <= 1.2 })
    const grow = big.rssMiB / small.rssMiB
    out.push({ name: `Haraka RSS ${big.entries} vs ${small.entries} entries unchanged (<= 1.1)`, measured: `${fmt(big.rssMiB, 1)} / ${fmt(small.rssMiB, 1)} MiB`, pass: grow <= 1.1 })
  }
  out.push({ name: 'Haraka RSS with/without the suite (reported)', measured: `${fmt(memory['haraka+mx6'], 1)} / ${fmt(memory.haraka, 1)} MiB`, pass: true })
  if (quick) for (const b of out) b.pass = true
  return out
}

function printTable(rows: Row[], rtt: { p50: number; p99: number }, scaling: Array<{ entries: number; rcpt: { p50: number; p99: number }; rssMiB: number }>, memory: Record<string, number>, verdicts: Budget[]): void {
  const w = (s: string, n: number) => s.padEnd(n)
  const lines = [
    '',
    `Redis round trip (ioredis PING): p50 ${fmt(rtt.p50, 3)} ms, p99 ${fmt(rtt.p99, 3)} ms`,
    '',
    `${w('path', 14)}${w('sessions', 9)}${w('haraka msg/s', 14)}${w('+mx6 msg/s', 12)}${w('ratio', 7)}${w('CPU ms/msg haraka / +mx6 (+redis)', 35)}${w('rcpt p50/p99 ms', 18)}${w('data_post p50/p99', 19)}${w('cmds/reads/decision reads', 27)}eld p99 ms (haraka / +mx6)`,
  ]
  for (const s of [...new Set(rows.map((r) => r.sessions))]) {
    for (const p of PATHS) {
      const a = rows.find((r) => r.config === 'haraka' && r.path === p && r.sessions === s)
      const b = rows.find((r) => r.config === 'haraka+mx6' && r.path === p && r.sessions === s)
      if (!a || !b) continue
      lines.push(
        `${w(p, 14)}${w(String(s), 9)}${w(fmt(a.load.perSecond, 1), 14)}${w(fmt(b.load.perSecond, 1), 12)}${w(fmt(b.load.perSecond / a.load.perSecond, 3), 7)}` +
          `${w(`${fmt(a.cpu.haraka, 3)} / ${fmt(b.cpu.haraka, 3)} (+${fmt(b.cpu.redis, 3)})`, 35)}` +
          `${w(b.rcpt ? `${fmt(b.rcpt.p50, 3)}/${fmt(b.rcpt.p99, 3)}` : '-', 18)}${w(b.dataPost && Number.isFinite(b.dataPost.p50) ? `${fmt(b.dataPost.p50, 3)}/${fmt(b.dataPost.p99, 3)}` : '-', 19)}` +
          `${w(b.perMessage ? `${fmt(b.perMessage.commands, 2)}/${fmt(b.perMessage.reads, 2)}/${fmt(b.perMessage.decisionReads, 2)}` : '-', 27)}${fmt(a.eldP99 ?? NaN, 1)} / ${fmt(b.eldP99 ?? NaN, 1)}`,
      )
    }
  }
  lines.push('', 'scaling (ipv6-deferred, 1 session):')
  for (const s of scaling) lines.push(`  ${String(s.entries).padStart(8)} ip:allow entries (+ as many book members): rcpt p50 ${fmt(s.rcpt.p50, 3)} ms, p99 ${fmt(s.rcpt.p99, 3)} ms, Haraka RSS ${fmt(s.rssMiB, 1)} MiB`)
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
