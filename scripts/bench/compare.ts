#!/usr/bin/env node
// `npm run bench:compare`: what each of several builds of the suite costs Haraka, side by
// side: Haraka alone, a second Haraka alone (the A/A control) and one Haraka per build, all
// loaded at once on the same CPU, in rounds of fresh processes (as the benchmark's concurrent
// rounds). For comparing a change with the code before it, or finding what a part costs
// (a copy of dist/ with that part taken out). Loopback and test-namespace addresses only.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { HarakaServer } from '../../test/support/haraka'
import { requireTestbed } from '../../test/support/net'
import { runOk } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { options, usage, whole } from './cli'
import { benchMessage, fixturePlugin, freshRound, PATHS, suiteIni, V4, V6, type Path } from './load'

const HELP = `Usage: npm run bench:compare -- [--path P] [--rounds N] [--messages M]
       [--sessions S] [--quick] [--no-pin] [--out FILE] BUILD...

Compares the CPU time per message of Haraka alone with that of Haraka with
mx6-receive loaded from each BUILD, all of them loaded at once on the same CPU
(so the machine's speed changes hit them alike), inside the test namespace
(needs root, like npm test). A second Haraka alone (the A/A control) shows how
far apart two processes of the same code land: the resolution of the figures.

BUILD: a directory holding a built dist/ (dist/plugins/mx6-receive/index.js)
whose requires resolve (its own node_modules, or a symlink to this checkout's):
"." for this checkout, a git worktree of another commit after npm run build, or
a copy of dist/ with one part taken out. A file compare.ini in BUILD is added
to that build's mx6-receive.ini (e.g. "[followup]" and "write_window_ms=250").

--path: ipv4, ipv6-allowed, ipv6-allowed-uncached, ipv6-deferred (default) or
ipv6-dkim, as in npm run bench. --rounds: rounds (default 4), each with fresh
processes, warmed with as many messages as it measures. --messages: measured
messages per process and round (default 2000). --sessions: concurrent sessions
per process (default 50). --quick: 1 round of 20 messages with 5 sessions (a
smoke run). --no-pin: do not pin Haraka to CPU 1 and the load generators and
Redis to CPU 0. --out: also write the figures as JSON to FILE.

Prints, per round and over all rounds, Haraka alone's CPU per message over each
process's (1.000: no cost; 0.900: the build costs 10 % of Haraka's throughput),
and the final reply codes each process gave; exits 1 when a process gave another
reply than the path's (250, or 451 from the suite on ipv6-deferred). smtp-source
(ipv4, ipv6-allowed, ipv6-allowed-uncached) reports no codes: its messages count
as 250 when it succeeds.
`

interface Options {
  path: Path
  rounds: number
  messages: number
  sessions: number
  pin: boolean
  out: string
  builds: string[]
}

function readOptions(argv: string[]): Options {
  const tool = 'bench:compare'
  const { values, positionals } = options(tool, HELP, argv, { path: { type: 'string' }, rounds: { type: 'string' }, messages: { type: 'string' }, sessions: { type: 'string' }, quick: { type: 'boolean' }, 'no-pin': { type: 'boolean' }, out: { type: 'string' } }, true)
  const p = values.path ?? 'ipv6-deferred'
  if (!(PATHS as string[]).includes(p)) usage(tool, `unknown path ${p || '(none given)'}; paths: ${PATHS.join(', ')}`)
  // --quick sets the three counts where it stands: a count given after it still wins.
  const last = (flag: string) => argv.reduce((at, a, i) => (a === flag || a.startsWith(`${flag}=`) ? i : at), -1)
  const count = (flag: string, value: string | undefined, def: number, max: number, smoke: number) => {
    const n = whole(tool, flag, value, def, max)
    return values.quick && last(flag) < last('--quick') ? smoke : n
  }
  const o: Options = {
    path: p as Path,
    rounds: count('--rounds', values.rounds, 4, 100, 1),
    messages: count('--messages', values.messages, 2000, 1000000, 20),
    sessions: count('--sessions', values.sessions, 50, 500, 5),
    pin: !values['no-pin'],
    out: values.out ?? '',
    builds: positionals,
  }
  if (o.builds.length === 0) usage(tool, 'no BUILD given', HELP)
  for (const b of o.builds) {
    const entry = path.resolve(b, 'dist', 'plugins', 'mx6-receive', 'index.js')
    if (!fs.existsSync(entry)) usage(tool, `${b}: no ${path.join('dist', 'plugins', 'mx6-receive', 'index.js')} (run npm run build there)`)
  }
  return o
}

/** A process of a round: Haraka alone, the control, or Haraka with a build's mx6-receive. */
interface Contender {
  name: string
  /** The build directory; none for Haraka alone and the control. */
  build?: string
}

function start(c: Contender, port: number, redisPort: number, p: Path): Promise<HarakaServer> {
  const extraFile = c.build ? path.join(c.build, 'compare.ini') : ''
  // The build's plugin, loaded under a name of its own: its exports become the plugin's.
  const plugin = c.build ? `Object.assign(exports, require(${JSON.stringify(path.resolve(c.build, 'dist', 'plugins', 'mx6-receive', 'index.js'))}))` : ''
  return HarakaServer.start({
    listen: [`[${V6}]:${port}`, `${V4}:${port}`],
    plugins: ['spf', 'dkim', ...(c.build ? ['mx6-build'] : []), 'rcpt_to.in_host_list', 'bench-queue'],
    pluginFiles: { 'bench-queue': fixturePlugin('bench-queue'), ...(c.build ? { 'mx6-build': plugin } : {}) },
    config: { 'mx6-receive.ini': suiteIni(redisPort, { uncached: p === 'ipv6-allowed-uncached', more: extraFile && fs.existsSync(extraFile) ? fs.readFileSync(extraFile, 'utf8') : '' }) },
  })
}

const PORT = 2700

async function main(): Promise<number> {
  const o = readOptions(process.argv.slice(2))
  requireTestbed()
  const pinned = o.pin && os.availableParallelism() >= 2
  const pin = (pid: number, cpu: number) => runOk('taskset', ['-a', '-p', '-c', String(cpu), String(pid)])
  if (pinned) await pin(process.pid, 0)
  const contenders: Contender[] = [{ name: 'haraka alone' }, { name: 'haraka alone (A/A control)' }, ...o.builds.map((b) => ({ name: b, build: b }))]
  const cpu = contenders.map(() => 0)
  const perRound: number[][] = contenders.map(() => [])
  const codes: Array<Record<string, number>> = contenders.map(() => ({}))
  const redis = await RedisServer.start()
  try {
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:25::/48', 'smtp-source peers (bench)')
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'DKIM-signed bench messages')
    const signed = await benchMessage()
    process.stdout.write(`${o.path}: ${o.rounds} round(s) of ${o.messages} measured messages per process, ${o.sessions} sessions each, ${contenders.length} processes at once${pinned ? ' on CPU 1' : ''}\n`)
    for (let round = 0; round < o.rounds; round++) {
      const starts = contenders.map((c) => async (port: number) => {
        const h = await start(c, port, redis.port, o.path)
        if (pinned) await pin(h.pid, 1)
        return h
      })
      const { cpuMs: used, loads } = await freshRound(starts, contenders.map((_, i) => PORT + i), o.path, o.sessions, o.messages, signed)
      used.forEach((u, i) => {
        cpu[i] += u
        perRound[i].push(used[0] / u)
        for (const [code, n] of Object.entries(loads[i].codes)) codes[i][code] = (codes[i][code] ?? 0) + n
      })
      process.stdout.write(`round ${round + 1}: ${contenders.map((c, i) => `${c.name} ${(used[0] / used[i]).toFixed(3)}`).join(', ')}\n`)
    }
  } finally {
    await redis.stop()
  }
  const total = o.rounds * o.messages
  const rows = contenders.map((c, i) => ({
    name: c.name,
    ratio: cpu[0] / cpu[i],
    rounds: perRound[i],
    cpuUsPerMessage: (cpu[i] * 1000) / total,
    codes: codes[i],
  }))
  const width = Math.max(...rows.map((r) => r.name.length))
  process.stdout.write(`\n${'process'.padEnd(width)}  alone/it  rounds                 CPU us/msg  replies\n`)
  for (const r of rows) {
    const span = r.rounds.length > 1 ? `${Math.min(...r.rounds).toFixed(3)}-${Math.max(...r.rounds).toFixed(3)}` : r.rounds[0].toFixed(3)
    process.stdout.write(`${r.name.padEnd(width)}  ${r.ratio.toFixed(3).padEnd(8)}  ${span.padEnd(21)}  ${r.cpuUsPerMessage.toFixed(0).padEnd(10)}  ${JSON.stringify(r.codes)}\n`)
  }
  if (o.out) fs.writeFileSync(o.out, `${JSON.stringify({ date: new Date().toISOString(), options: { ...o, pinned }, rows }, null, 2)}\n`)
  // A process that gave another reply than the path's did not run the path: its figure means nothing.
  let wrong = 0
  for (const [i, c] of contenders.entries()) {
    const want = expectedReply(o.path, !!c.build)
    const other = Object.keys(codes[i]).filter((code) => code !== want)
    if (other.length === 0) continue
    wrong++
    process.stderr.write(`bench:compare: ${c.name} answered ${other.join(', ')} where the ${o.path} path gives ${want}: its figure does not measure that path\n`)
  }
  return wrong ? 1 : 0
}

/** The final reply of every message of a path: Haraka alone accepts all; the suite defers unknown IPv6 peers. */
function expectedReply(p: Path, suite: boolean): string {
  return suite && p === 'ipv6-deferred' ? '451' : '250'
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:compare: ${err.stack ?? err.message}\n`)
    process.exit(1)
  },
)
