#!/usr/bin/env node
// What `mx6ctl sync` costs for a large provider file: a generated file of N lines (IPv6
// CIDRs, a few comments, blanks and duplicates) imported into an empty list, then again
// with a small delta, side by side with what Redis alone costs for the same entries (one
// pipelined HSET of them, 1000 fields per command). mx6ctl runs as its own process, as
// under cron; its peak RSS comes from the process itself (a preloaded hook writes
// process.resourceUsage().maxRSS at exit), the apply script's hold time as mx6ctl timed
// it, and all its scripts together from Redis's own commandstats.
// Run by `npm run bench` (syncImport), or alone:
//   node dist/scripts/bench/sync-import.js [--lines N]   (own private redis-server)
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Redis } from 'ioredis'
import { tempDir } from '../../test/support/proc'
import { RedisServer } from '../../test/support/redis'
import { options, whole } from './cli'
import { fmt } from './stats'

export interface SyncRun {
  /** Lines in the file. */
  lines: number
  seconds: number
  linesPerSecond: number
  /** Peak resident set size of the mx6ctl process (MiB). */
  peakRssMiB: number
  /** How long the one apply script held Redis (seconds, as mx6ctl timed its call). */
  scriptSeconds: number
  /** All the run's scripts together (the counting slices before the apply too), from Redis's commandstats. */
  allScriptsSeconds: number
  figures: Record<string, unknown>
}

export interface SyncBench {
  lines: number
  first: SyncRun
  delta: SyncRun
  /** The same entries as one pipelined HSET (1000 fields per command) into a fresh key: Redis alone. */
  baseline: { seconds: number; entriesPerSecond: number }
}

/** The i-th entry: distinct /64s under 2001:db8::/32. */
function entry(i: number): string {
  return `2001:db8:${(Math.floor(i / 65536) + 0x100).toString(16)}:${(i % 65536).toString(16)}::/64`
}

/** Writes the file: `n` lines, mostly entries, one comment and one duplicate in every 1000; `shift` entries moved on (the delta). */
function writeFile(file: string, n: number, shift = 0): void {
  const fd = fs.openSync(file, 'w')
  let buf: string[] = []
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) buf.push('# provider list, generated')
    else if (i % 1000 === 1) buf.push(entry(i + 1 + shift))
    else buf.push(`${entry(i + shift)}${i % 97 === 0 ? '   ; trailing comment' : ''}`)
    if (buf.length >= 10000) {
      fs.writeSync(fd, `${buf.join('\n')}\n`)
      buf = []
    }
  }
  if (buf.length) fs.writeSync(fd, `${buf.join('\n')}\n`)
  fs.closeSync(fd)
}

async function evalshaUsec(redis: Redis): Promise<number> {
  // ioredis sends EVAL when the script is not loaded yet, EVALSHA after.
  const info = await redis.info('commandstats')
  const usec = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=\\d+,usec=(\\d+)`).exec(info)?.[1] ?? 0)
  return usec('evalsha') + usec('eval')
}

/** One mx6ctl sync run as a child process; its figures (--json) and peak RSS. */
async function runSync(url: string, file: string, dir: string, redis: Redis): Promise<SyncRun> {
  const hook = path.join(dir, 'maxrss.js')
  const rssFile = path.join(dir, 'maxrss')
  fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)))\n`)
  const cli = path.join(__dirname, '..', 'mx6ctl.js')
  const u0 = await evalshaUsec(redis)
  const t0 = process.hrtime.bigint()
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, MX6_REDIS_URL: url }
    delete env.MX6_CONFIG
    const child = spawn(process.execPath, ['--require', hook, cli, 'sync', 'allow', 'ip', 'bench', file, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }))
  })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (code !== 0) throw new Error(`mx6ctl sync exited ${code}: ${stderr.slice(0, 2000)}`)
  const figures = JSON.parse(stdout) as Record<string, unknown>
  const lines = Number(figures.lines)
  return { lines, seconds, linesPerSecond: lines / seconds, peakRssMiB: Number(fs.readFileSync(rssFile, 'utf8')) / 1024, scriptSeconds: Number(figures.scriptSeconds), allScriptsSeconds: ((await evalshaUsec(redis)) - u0) / 1e6, figures }
}

/** Redis alone: the same entries written with pipelined HSETs into a key of their own. */
async function baseline(redis: Redis, n: number): Promise<{ seconds: number; entriesPerSecond: number }> {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; ) {
    const p = redis.pipeline()
    for (let b = 0; b < 20 && i < n; b++) {
      const fields: string[] = []
      for (let k = 0; k < 1000 && i < n; k++, i++) fields.push(entry(i), 'source:baseline')
      p.hset('bench:baseline', ...fields)
    }
    await p.exec()
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  await redis.unlink('bench:baseline')
  return { seconds, entriesPerSecond: n / seconds }
}

/** The import of `lines` lines, a re-import with 1 % of them moved on, and the baseline, against the Redis at `port`. */
export async function syncImport(port: number, lines: number): Promise<SyncBench> {
  const dir = tempDir('bench-sync')
  const redis = new Redis({ port, host: '127.0.0.1' })
  try {
    const file = path.join(dir, 'provider.txt')
    writeFile(file, lines)
    const url = `redis://127.0.0.1:${port}`
    const first = await runSync(url, file, dir, redis)
    writeFile(file, lines, Math.max(1, Math.floor(lines / 100)))
    const delta = await runSync(url, file, dir, redis)
    const base = await baseline(redis, lines)
    return { lines, first, delta, baseline: base }
  } finally {
    redis.disconnect()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** The lines npm run bench prints. */
export function syncLines(b: SyncBench): string[] {
  const run = (name: string, r: SyncRun) =>
    `  sync ${name.padEnd(6)} ${r.lines} lines: ${fmt(r.linesPerSecond, 0)} lines/s, ${fmt(r.seconds, 2)} s, peak RSS ${fmt(r.peakRssMiB, 1)} MiB (mx6ctl), apply script held Redis ${fmt(r.scriptSeconds * 1000, 0)} ms (all its scripts ${fmt(r.allScriptsSeconds * 1000, 0)} ms) (added ${String(r.figures.added)}, removed ${String(r.figures.removed)}, kept ${String(r.figures.kept)})`
  return [run('first', b.first), run('delta', b.delta), `  sync baseline: the same entries as pipelined HSETs (Redis alone): ${fmt(b.baseline.entriesPerSecond, 0)} entries/s, ${fmt(b.baseline.seconds, 2)} s`]
}

const HELP = `Usage: node dist/scripts/bench/sync-import.js [--lines N]

Measures mx6ctl sync against a private redis-server of its own: a generated
provider file of N lines (default 1000000) imported into an empty list, then
again with 1 % of the entries changed, and the same entries written by
pipelined HSETs (what Redis alone costs). Prints lines/s, wall time, the peak
RSS of the mx6ctl process and how long the apply script held Redis.
`

if (require.main === module) {
  const { values } = options('sync-import', HELP, process.argv.slice(2), { lines: { type: 'string' } })
  const n = whole('sync-import', '--lines', values.lines, 1_000_000, 100_000_000)
  void (async () => {
    const server = await RedisServer.start()
    try {
      const b = await syncImport(server.port, n)
      for (const l of syncLines(b)) process.stdout.write(`${l}\n`)
      process.stdout.write(`${JSON.stringify(b)}\n`)
    } finally {
      await server.stop()
    }
  })().catch((err: Error) => {
    process.stderr.write(`sync-import: ${err.stack ?? err.message}\n`)
    process.exitCode = 1
  })
}
