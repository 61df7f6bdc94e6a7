#!/usr/bin/env node
// `npm run soak -- --minutes N`: mixed traffic for N minutes (up to --peak
// concurrent IPv6 sessions, default 1,000, plus half as many IPv4 ones),
// reporting errors, Haraka's RSS and open file descriptors over time.
// Budget: RSS growth under 10 % after the ramp-up, zero errors.
import fs from 'node:fs'
import { HarakaServer } from '../../test/support/haraka'
import { requireTestbed } from '../../test/support/net'
import { childPids, fdCount, rssMiB } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { smtpSession } from '../../test/support/smtp'
import { options, usage } from './cli'
import { fixturePlugin, V4, V6 } from './load'
import { fmt } from './stats'

const PORT = 2700

const HELP = `Usage: npm run soak [-- --minutes N] [-- --peak P] [-- --nodes K] [-- --without-suite] [-- --out FILE]

Drives mixed traffic (a third IPv4, a third allow-listed IPv6, a third unknown
IPv6) against Haraka with mx6-receive for N minutes (default 10), ramping up
over the first fifth of the run to P concurrent IPv6 sessions (default 1000)
plus P/2 IPv4 sessions. Haraka runs with nodes=K worker processes (default 2,
as on a production server with several cores; 0: one process, which at this
load leaves connections in the listen backlog long enough to time out, with
or without the suite). Every 10 s it samples the IPv6 sessions in progress
and the RSS and open file descriptors of all Haraka processes together. An
error is a session that fails, times out, or gets another answer than the
policy says (IPv4 250, allow-listed IPv6 250, unknown IPv6 451). Budget:
zero errors and RSS growth under 10 % from the end of the ramp-up to the end.
--without-suite: the same load against Haraka alone (every answer should then
be 250), to tell Haraka's own limits from the suite's. Needs root (the test
namespace), like npm test. JSON to FILE (default soak-results.json).
`

interface Sample {
  t: number
  sessions: number
  /** IPv6 sessions in progress at the sample. */
  ipv6: number
  messages: number
  errors: number
  rssMiB: number
  fds: number
}

/** A number of at least `min` (fractions too), or `def` when the option is absent. */
function atLeast(name: string, value: string | undefined, def: number, min = 1): number {
  if (value === undefined) return def
  const v = Number(value)
  if (!Number.isFinite(v) || v < min) usage('soak', `${name} needs a number >= ${min}`, HELP)
  return v
}

/** RSS and open file descriptors of the Haraka master and its worker processes together. */
function harakaStat(master: number): { rssMiB: number; fds: number } {
  const pids = [master, ...childPids(master)]
  return { rssMiB: pids.reduce((sum, p) => sum + (rssMiB(p) || 0), 0), fds: pids.reduce((sum, p) => sum + fdCount(p), 0) }
}

async function main(): Promise<number> {
  const { values } = options('soak', HELP, process.argv.slice(2), { minutes: { type: 'string' }, peak: { type: 'string' }, nodes: { type: 'string' }, 'without-suite': { type: 'boolean' }, out: { type: 'string' } })
  const minutes = atLeast('--minutes', values.minutes, 10)
  const peak = Math.floor(atLeast('--peak', values.peak, 1000))
  const nodes = Math.floor(atLeast('--nodes', values.nodes, 2, 0))
  const withSuite = !values['without-suite']
  const out = values.out ?? 'soak-results.json'
  requireTestbed()
  const redis = await RedisServer.start()
  const haraka = await HarakaServer.start({
    listen: [`[${V6}]:${PORT}`, `${V4}:${PORT}`],
    plugins: ['spf', ...(withSuite ? ['mx6-receive'] : []), 'rcpt_to.in_host_list', 'soak-queue'],
    pluginFiles: { 'soak-queue': fixturePlugin('bench-queue') },
    // undecided=defer: every message gets its verdict at RCPT; log level warn keeps the log small.
    config: {
      'mx6-receive.ini': `[main]\nundecided=defer\nlint_interval=0\n[redis]\nport=${redis.port}\ntimeout=2000\n`,
      'log.ini': '[main]\nlevel=warn\n',
      'smtp.ini': `[main]\nlisten=[${V6}]:${PORT},${V4}:${PORT}\nnodes=${nodes}\nforce_shutdown_timeout=3\n`,
    },
  })
  await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::c000/116', 'soak: allowed peers')
  const t0 = Date.now()
  const end = t0 + minutes * 60000
  const rampEnd = t0 + minutes * 12000
  let messages = 0
  let errors = 0
  const errorsByKind: Record<string, number> = { ipv4: 0, 'ipv6-allowed': 0, 'ipv6-unknown': 0 }
  const kinds = ['ipv4', 'ipv6-allowed', 'ipv6-unknown']
  const examples: string[] = []
  let active = 0
  let ipv6 = 0
  let ipv6Peak = 0
  const samples: Sample[] = []
  // Each worker keeps one kind of traffic: worker w sends kinds[w % 3], one session after another.
  const worker = async (w: number): Promise<void> => {
    active++
    const kind = w % 3
    const v6 = kind !== 0
    while (Date.now() < end) {
      const peer = kind === 0 ? `192.0.2.${(w % 200) + 1}` : kind === 1 ? `2001:db8:7::c${(w % 4096).toString(16).padStart(3, '0')}` : `2001:db8:7::d${(w % 4096).toString(16).padStart(3, '0')}`
      const want = kind === 2 && withSuite ? 451 : 250
      if (v6) ipv6Peak = Math.max(ipv6Peak, ++ipv6)
      try {
        const r = await smtpSession({ host: v6 ? V6 : V4, port: PORT, localAddress: peer, ehlo: 'soak.neutral.test', mailFrom: 'soak@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: soak\r\n\r\nsoak\r\n', timeoutMs: 60000 })
        const code = r.dataEnd?.code ?? r.rcpt[0]?.code ?? r.mail.code
        if (code !== want) {
          errors++
          errorsByKind[kinds[kind]]++
          if (examples.length < 10) examples.push(`${kinds[kind]} ${peer}: got ${code}, expected ${want}`)
        }
      } catch (err) {
        errors++
        errorsByKind[kinds[kind]]++
        // The first line says what failed, the last one how far the dialogue got.
        const lines = (err as Error).message.split('\n')
        if (examples.length < 10) examples.push(`${kinds[kind]} ${peer}: ${lines[0]}${lines.at(-1) ? ` (last: ${lines.at(-1)})` : ' (no banner)'}`)
      }
      if (v6) ipv6--
      messages++
    }
    active--
  }
  const workers: Array<Promise<void>> = []
  const sampler = setInterval(() => {
    const s = { t: Math.round((Date.now() - t0) / 1000), sessions: active, ipv6, messages, errors, ...harakaStat(haraka.pid) }
    samples.push(s)
    process.stdout.write(`  ${String(s.t).padStart(5)} s  ${String(s.sessions).padStart(5)} sessions (${String(s.ipv6).padStart(4)} IPv6)  ${String(s.messages).padStart(8)} messages  ${String(s.errors).padStart(4)} errors  RSS ${fmt(s.rssMiB, 1)} MiB  ${s.fds} fds\n`)
  }, 10000)
  // Ramp up over the first fifth of the run: `peak` IPv6 workers (two kinds out of three) and half as many IPv4 ones.
  const total = Math.round((peak * 3) / 2)
  for (let w = 0; w < total; w++) {
    workers.push(worker(w))
    const due = t0 + ((w + 1) / total) * (rampEnd - t0)
    const wait = due - Date.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
  await Promise.all(workers)
  clearInterval(sampler)
  await haraka.stop()
  await redis.stop()
  // RSS swings with garbage collection: compare the median of the first three samples
  // after the ramp-up with the median of the last three.
  const steady = samples.filter((s) => s.t * 1000 >= rampEnd - t0)
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const afterRamp = steady.length ? { rssMiB: median(steady.slice(0, 3).map((s) => s.rssMiB)) } : undefined
  const last = steady.length ? { rssMiB: median(steady.slice(-3).map((s) => s.rssMiB)) } : undefined
  const growth = afterRamp && last ? last.rssMiB / afterRamp.rssMiB - 1 : NaN
  const pass = errors === 0 && growth < 0.1
  const result = { minutes, peak, ipv6Peak, nodes, withSuite, messages, errors, errorsByKind, examples, rssGrowth: growth, samples, pass }
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
  process.stdout.write(
    `\n${messages} messages in ${minutes} min at up to ${total} concurrent sessions, ${ipv6Peak} of them IPv6 (Haraka nodes=${nodes}${withSuite ? '' : ', without the suite'}); ${errors} errors ${JSON.stringify(errorsByKind)}${examples.length ? ` (${examples.slice(0, 3).join('; ')})` : ''}\n` +
      `Haraka RSS (all processes) ${fmt(afterRamp?.rssMiB ?? NaN, 1)} MiB after the ramp-up (median of 3 samples), ${fmt(last?.rssMiB ?? NaN, 1)} MiB at the end: growth ${fmt(100 * growth, 1)} % (budget < 10 %)\n` +
      `${pass ? 'PASS' : 'FAIL'}: zero errors and RSS growth under 10 %\nfigures written to ${out}\n`,
  )
  return pass ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`soak: ${err.stack ?? err.message}\n`)
    process.exit(1)
  },
)
