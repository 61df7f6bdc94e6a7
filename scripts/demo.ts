#!/usr/bin/env node
// `npm start`: a demo Haraka with the suite on loopback (IPv4 and IPv6), using a
// private redis-server unless one is given, and instructions to try it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Redis } from 'ioredis'
import { Keys } from '../plugins/lib/keys'
import { createRedis, REDIS_DEFAULTS } from '../plugins/lib/redis'
import { globPrefix } from './ctl/lint-cmd'
import { install, packageRoot } from './install'

const HELP = `Usage: npm start [-- options]   (or: node dist/scripts/demo.js [options])

Runs a demo Haraka on 127.0.0.1 and [::1] with spf, dkim and mx6-receive, for
the domain example.test, until Ctrl-C. Loopback IPv6 gets the policy here
(skip_private=false), so you can see a deferral and an allow-list entry at work.

Options:
  --port N        SMTP port on both addresses (default 2525)
  --redis URL     use this Redis (redis://host:port/db) instead of starting a
                  private redis-server (also: MX6_REDIS_URL); the demo then
                  keeps to keys under a prefix of its own (mx6demo:<random>:)
                  and deletes them when it stops, so existing mx6: entries
                  are never read or changed
  --self-test     start, send one IPv4 and two IPv6 messages, check the
                  replies, stop; exit status 0 when all is as documented
  -h, --help      this text

When Redis does not answer, or Haraka or a self-test check fails, the demo
says so, keeps its work directory (with Haraka's log) and prints where.
`

interface Options {
  port: number
  redisUrl: string
  selfTest: boolean
}

function parseArgs(argv: string[]): Options {
  const o: Options = { port: 2525, redisUrl: process.env.MX6_REDIS_URL ?? '', selfTest: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') {
      process.stdout.write(HELP)
      process.exit(0)
    } else if (a === '--port') {
      o.port = Number(argv[++i])
      if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) fail(`--port needs a port number`)
    } else if (a === '--redis') {
      o.redisUrl = argv[++i] ?? ''
      if (!/^rediss?:\/\//.test(o.redisUrl)) fail('--redis needs a redis:// or rediss:// URL')
    } else if (a === '--self-test') {
      o.selfTest = true
    } else {
      fail(`unknown option ${a}\n\n${HELP}`)
    }
  }
  return o
}

function fail(msg: string): never {
  process.stderr.write(`demo: ${msg}\n`)
  process.exit(2)
}

/** What the demo started, each with the signal that stops it cleanly. */
const children: Array<{ child: ChildProcess; signal: NodeJS.Signals }> = []
let workDir = ''
/** Set when something failed: the work directory (Haraka's log) is kept for a look. */
let keepWorkDir = false
/** The demo's own client, and the key prefix it must clean up on a Redis it did not start. */
let demoRedis: Redis | null = null
let foreignPrefix = ''

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, host, () => s.close(() => resolve(true)))
  })
}

/** Reads replies until a final line (code + space). */
function smtpReply(sock: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1')
      const lines = buf.split('\r\n')
      if (lines.some((l) => /^\d{3} /.test(l))) {
        sock.off('data', onData)
        resolve(buf.trimEnd())
      }
    }
    sock.on('data', onData)
    sock.once('error', reject)
  })
}

/** One SMTP transaction; returns the last reply (RCPT failure or end of DATA). */
async function sendOne(host: string, port: number, mailFrom: string, rcpt: string): Promise<string> {
  const sock = net.connect({ host, port })
  sock.setTimeout(10000, () => sock.destroy(new Error('timeout')))
  try {
    await smtpReply(sock)
    const step = async (line: string): Promise<string> => {
      sock.write(`${line}\r\n`)
      return smtpReply(sock)
    }
    await step('EHLO demo.example.test')
    await step(`MAIL FROM:<${mailFrom}>`)
    const r = await step(`RCPT TO:<${rcpt}>`)
    if (!r.startsWith('250')) return r
    await step('DATA')
    const end = await step(`From: ${mailFrom}\r\nTo: ${rcpt}\r\nSubject: mx6 demo\r\n\r\nHello.\r\n.`)
    await step('QUIT').catch(() => '')
    return end
  } finally {
    sock.destroy()
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function startRedis(): Promise<string> {
  const port = await freePort()
  const dir = path.join(workDir, 'redis')
  fs.mkdirSync(dir)
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  child.on('error', () => fail('redis-server not found: install Redis (Debian: apt-get install redis-server) or pass --redis URL'))
  children.push({ child, signal: 'SIGTERM' })
  await waitFor(async () => !(await portFree('127.0.0.1', port)), 5000, 'redis-server')
  return `redis://127.0.0.1:${port}`
}

function shownUrl(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@')
}

/** Connects and PINGs once, failing fast: a dead Redis is named with its error, not found out by a 451. */
async function connectRedis(url: string): Promise<Redis> {
  const redis = createRedis({ ...REDIS_DEFAULTS, url }, { lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: true, commandTimeout: 3000, connectTimeout: 3000 })
  let cause = ''
  redis.on('error', (err: Error) => {
    // The socket error (ECONNREFUSED, ...) says more than connect()'s "Connection is closed".
    cause ||= err.message
  })
  try {
    await redis.connect()
    await redis.ping()
    return redis
  } catch (err) {
    redis.disconnect()
    throw new Error(`Redis at ${shownUrl(url)} does not answer: ${cause || (err as Error).message}`)
  }
}

/** Deletes every key under the demo's own prefix (all of them its own: the prefix is random). */
async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', globPrefix(prefix), 'COUNT', 1000)
    cursor = next
    if (keys.length) await redis.unlink(...keys)
  } while (cursor !== '0')
}

async function stopChild({ child, signal }: { child: ChildProcess; signal: NodeJS.Signals }): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill(signal)
  await new Promise<void>((r) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      r()
    }, 5000)
    child.once('exit', () => {
      clearTimeout(t)
      r()
    })
  })
}

async function cleanup(): Promise<void> {
  // Haraka first (it writes to Redis), then the private redis-server.
  for (const c of [...children].reverse()) await stopChild(c)
  if (demoRedis) {
    if (foreignPrefix) {
      await dropPrefix(demoRedis, foreignPrefix).catch((err: Error) => process.stderr.write(`demo: could not delete the demo's keys ${foreignPrefix}* (${err.message}): delete them by hand\n`))
    }
    demoRedis.disconnect()
  }
  if (!workDir) return
  if (keepWorkDir) process.stderr.write(`demo: kept the work directory ${workDir} (Haraka's log: ${path.join(workDir, 'haraka.log')})\n`)
  else fs.rmSync(workDir, { recursive: true, force: true })
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2))
  for (const host of ['127.0.0.1', '::1']) {
    if (!(await portFree(host, o.port))) fail(`port ${o.port} on ${host} is in use: pick another with --port`)
  }
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mx6-demo-'))
  const redisUrl = o.redisUrl || (await startRedis())
  // On a Redis the demo did not start, keys of its own: the operator's mx6: entries stay untouched.
  const prefix = o.redisUrl ? `mx6demo:${crypto.randomBytes(4).toString('hex')}:` : REDIS_DEFAULTS.prefix
  const keys = new Keys(prefix)
  if (o.redisUrl) foreignPrefix = prefix
  const haraka = path.join(workDir, 'haraka')
  const root = packageRoot()
  const harakaBin = path.join(root, 'node_modules', 'Haraka', 'bin', 'haraka')
  spawnSync(process.execPath, [harakaBin, '-i', haraka], { stdio: 'ignore' })
  install(haraka)
  const cfg = (name: string, text: string): void => fs.writeFileSync(path.join(haraka, 'config', name), text)
  cfg('smtp.ini', `[main]\nlisten=127.0.0.1:${o.port},[::1]:${o.port}\nnodes=0\n`)
  cfg('plugins', 'spf\ndkim\nmx6-receive\nrcpt_to.in_host_list\nqueue/discard\n')
  cfg('host_list', 'example.test\n')
  cfg('me', 'mx.example.test\n')
  cfg('log.ini', '[main]\nlevel=info\n')
  // The shipped defaults, plus what a loopback demo needs.
  const ini = fs.readFileSync(path.join(haraka, 'config', 'mx6-receive.ini'), 'utf8')
  cfg('mx6-receive.ini', ini.replace(/^\[main\]$/m, '[main]\nskip_private=false').replace(/^\[redis\]$/m, `[redis]\nurl=${redisUrl}\nprefix=${prefix}`))
  const log = path.join(workDir, 'haraka.log')
  const fd = fs.openSync(log, 'a')
  const child = spawn(process.execPath, [harakaBin, '-c', haraka], {
    cwd: haraka,
    stdio: ['ignore', fd, fd],
    // queue/discard only drops mail when told to: this demo delivers nowhere.
    env: { ...process.env, YES_REALLY_DO_DISCARD: '1' },
  })
  // Haraka stops on SIGINT (SIGTERM only when it is PID 1).
  children.push({ child, signal: 'SIGINT' })
  fs.closeSync(fd)
  await waitFor(async () => !(await portFree('::1', o.port)) || child.exitCode !== null, 15000, 'Haraka')
  if (child.exitCode !== null) throw new Error(`Haraka exited:\n${fs.readFileSync(log, 'utf8').slice(-3000)}`)
  demoRedis = await connectRedis(redisUrl)

  if (o.selfTest) return selfTest(o.port, redisUrl, demoRedis, keys, log)

  process.stdout.write(`
haraka-mx6 demo is running (Ctrl-C to stop)
  Haraka     127.0.0.1:${o.port} and [::1]:${o.port}, domain example.test, queue/discard
  Redis      ${shownUrl(redisUrl)}${o.redisUrl ? `, keys ${prefix}* (deleted on exit)` : ' (private, discarded on exit)'}
  Log        ${log}

Try it (swaks: apt-get install swaks libio-socket-inet6-perl):
  # IPv4 is never touched: accepted
  swaks -s 127.0.0.1 -p ${o.port} -f a@sender.test -t bob@example.test
  # IPv6 with nothing known: 451 4.7.26 after DATA ("deliver via our IPv4 MX")
  swaks -s ::1 -p ${o.port} -f a@sender.test -t bob@example.test
  # allow-list the IPv6 peer, then the same message is accepted
  redis-cli -u ${redisUrl} HSET ${keys.ipAllow} ::1 "demo: loopback"
  swaks -s ::1 -p ${o.port} -f a@sender.test -t bob@example.test
  # see why: every decision is one log line
  grep mx6-receive ${log}

`)
  const stopped = await new Promise<'signal' | 'haraka'>((resolve) => {
    process.once('SIGINT', () => resolve('signal'))
    process.once('SIGTERM', () => resolve('signal'))
    child.once('exit', () => resolve('haraka'))
  })
  if (stopped === 'signal') return 0
  process.stderr.write('demo: Haraka stopped by itself\n')
  keepWorkDir = true
  return 1
}

async function selfTest(port: number, redisUrl: string, redis: Redis, keys: Keys, log: string): Promise<number> {
  const checks: Array<[string, string, RegExp]> = []
  checks.push(['IPv4 accepted', await sendOne('127.0.0.1', port, 'a@sender.test', 'bob@example.test'), /^250 /m])
  checks.push(['IPv6 unknown deferred', await sendOne('::1', port, 'a@sender.test', 'bob@example.test'), /^451 4\.7\.26 /m])
  // A private Redis or the demo's own prefix: the entry goes with them (cleanup), nothing else is touched.
  await redis.hset(keys.ipAllow, '::1', 'demo self-test')
  checks.push(['IPv6 allow-listed accepted', await sendOne('::1', port, 'a@sender.test', 'bob@example.test'), /^250 /m])
  let ok = true
  for (const [name, reply, want] of checks) {
    const pass = want.test(reply)
    ok &&= pass
    process.stdout.write(`${pass ? 'ok  ' : 'FAIL'} ${name}: ${reply.split('\r\n').at(-1)}\n`)
  }
  // One decision line per IPv6 message (the IPv4 peer is left alone, which is logged at debug level).
  const decisions = fs.readFileSync(log, 'utf8').split('\n').filter((l) => /\[mx6-receive\] (rcpt|data_post)\b.* verdict=/.test(l))
  process.stdout.write(`${decisions.length} decision log lines\nredis: ${shownUrl(redisUrl)}${foreignPrefix ? `\nkeys: ${foreignPrefix}* (deleted now)` : ''}\nworkdir: ${workDir}\n`)
  if (decisions.length < 2) process.stdout.write(`FAIL expected a decision log line per IPv6 message in ${log}\n`)
  const passed = ok && decisions.length >= 2
  keepWorkDir ||= !passed
  return passed ? 0 : 1
}

main()
  .then(async (code) => {
    await cleanup()
    process.exit(code)
  })
  .catch(async (err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`)
    keepWorkDir = true
    await cleanup()
    process.exit(1)
  })
