// mx6-send end to end: a sending Haraka (outbound, mx6-send) delivers to a receiving
// Haraka with mx6-receive on an MX6 listener and an IPv4 MX, over hermetic DNS.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { DnsProxy } from '../support/dnsproxy'
import { HarakaServer, type Captured } from '../support/haraka'
import { holdPlugin } from '../support/hold'
import { requireTestbed } from '../support/net'
import { PostfixReceiver } from '../support/postfix-receiver'
import { poll, sleep } from '../support/proc'
import { MX6, useReceiver, V4MX } from '../support/receiver'
import { RedisServer } from '../support/redis'
import { smtpSession } from '../support/smtp'

const SENDER_V6 = '2001:db8:7::99'
const SENDER_V4 = '192.0.2.99'
const RELAY_ALL = 'exports.hook_connect_init = (next, connection) => { connection.relaying = true; next() }'

export async function startSender(redisPort: number, extraPlugins: Record<string, string> = {}): Promise<HarakaServer> {
  return HarakaServer.start({
    listen: ['127.0.0.1:2626'],
    plugins: ['relay-all', ...Object.keys(extraPlugins), 'mx6-send'],
    pluginFiles: { 'relay-all': RELAY_ALL, ...extraPlugins },
    config: {
      'mx6-send.ini': `[main]\nbind_ipv6=${SENDER_V6}\nbind_ipv4=${SENDER_V4}\n[dns]\nservers=127.0.0.54\ntimeout=500\nnegative_ttl=0\n[redis]\nport=${redisPort}\n`,
      // local_mx_ok: the MX addresses live in this namespace; 5 s is Haraka's shortest retry interval.
      'outbound.ini': 'local_mx_ok=true\ntemp_fail_intervals=5s,5s,5s,5s,5s,5s\n',
    },
  })
}

interface SenderCtx {
  proxy: DnsProxy
  redis: RedisServer
  sender: HarakaServer
}

/** A sending Haraka with mx6-send, its own Redis (fallback log) and the DNS proxy, per describe block. */
function useSender(extraPlugins: Record<string, string> = {}): SenderCtx {
  const ctx = {} as SenderCtx
  before(async function () {
    this.timeout(30000)
    requireTestbed()
    ctx.proxy = await DnsProxy.start()
    ctx.redis = await RedisServer.start()
    ctx.sender = await startSender(ctx.redis.port, extraPlugins)
  })
  after(async () => {
    await ctx.sender?.stop()
    await ctx.redis?.stop()
    await ctx.proxy?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ctx.sender) console.log(ctx.sender.log().slice(-8000))
  })
  return ctx
}

let seq = 0
/** Submits one message to the sending Haraka; returns its Message-ID. */
async function submit(to: string, mailFrom = 'someone@neutral.test'): Promise<string> {
  const mid = `<send${++seq}.${Date.now()}@neutral.test>`
  const r = await smtpSession({
    host: '127.0.0.1',
    port: 2626,
    ehlo: 'client.neutral.test',
    mailFrom,
    rcptTo: [to],
    data: `From: ${mailFrom}\r\nTo: ${to}\r\nSubject: mx6-send test\r\nMessage-ID: ${mid}\r\n\r\nHello.\r\n`,
  })
  assert.equal(r.dataEnd?.code, 250, r.transcript)
  return mid
}

function copies(receiver: HarakaServer, mid: string): Captured[] {
  return receiver.captured().filter((c) => c.raw.includes(`Message-ID: ${mid}`))
}

function waitForCopy(receiver: HarakaServer, mid: string, timeoutMs = 15000): Promise<Captured> {
  return poll(() => copies(receiver, mid)[0], timeoutMs, `delivery of ${mid}`)
}

describe('e2e: mx6-send', function () {
  this.timeout(90000)
  const rx = useReceiver({ listen: [`[${MX6}]:25`, `${V4MX}:25`], ini: `[mx6]\nlisteners=${MX6}`, hostList: ['mx6rcpt.test', 'mx6only.test', 'deadmx6.test'] })
  const tx = useSender()
  let proxy: DnsProxy
  let redis: RedisServer
  let sender: HarakaServer
  before(() => ({ proxy, redis, sender } = tx))

  it('(a) MX6 host accepts: delivered over IPv6 to the SRV target', async () => {
    await rx.redis.cli('HSET', 'mx6:ip:allow', SENDER_V6, 'sending test host')
    const mid = await submit('bob@mx6rcpt.test')
    const got = await waitForCopy(rx.haraka, mid)
    assert.equal(got.meta.local_ip, MX6)
    assert.equal(got.meta.remote_ip, SENDER_V6)
    await rx.redis.cli('HDEL', 'mx6:ip:allow', SENDER_V6)
  })

  it('(b) MX6 host answers 550 5.5.7: delivered to the regular MX over IPv4 at once, no bounce, logged', async () => {
    const t0 = Date.now()
    const mid = await submit('bob@mx6rcpt.test')
    const got = await waitForCopy(rx.haraka, mid)
    assert.ok(Date.now() - t0 < 4000, 'not after the 5 s retry delay')
    assert.equal(got.meta.local_ip, V4MX)
    assert.equal(got.meta.remote_ip, SENDER_V4)
    assert.match(rx.haraka.log(), /data_post verdict=fallback/)
    const log = sender.log()
    assert.match(log, /\[mx6-send\] MX6 fallback from mx6\.rcpt\.test\[2001:db8:25::6\] for mx6rcpt\.test: 550 /)
    assert.match(log, /Not sending bounce/)
    assert.doesNotMatch(log, /\[mx6-send\] neutral\.test:/, 'no bounce was sent to the envelope sender')
    await poll(() => (sender.queued().length === 0 ? true : undefined), 5000, 'empty outbound queue')
    assert.equal(copies(rx.haraka, mid).length, 1)
    const entries = (await redis.cli('LRANGE', 'mx6:send:fallbacks', '0', '-1')).split('\n').filter(Boolean).map((l) => JSON.parse(l))
    const e = entries.find((x) => x.recipients.some((r: string) => r.includes('bob@mx6rcpt.test')))
    assert.ok(e, JSON.stringify(entries))
    assert.equal(e.code, '550')
    assert.equal(e.status, '5.5.7')
    assert.match(e.reply, /Authentication-Results: mx\.rcpt\.test;\s+spf=neutral smtp\.mailfrom=neutral\.test/)
    assert.equal(e.domain, 'mx6rcpt.test')
  })

  it('(c) no _mx6._tcp SRV: the regular MX over IPv4 only, although it has AAAA', async () => {
    const mid = await submit('bob@mx6only.test')
    const got = await waitForCopy(rx.haraka, mid)
    assert.equal(got.meta.local_ip, V4MX)
    assert.match(sender.log(), /\[mx6-send\] mx6only\.test: mx6\.rcpt\.test\[198\.51\.100\.25\]:25\n/)
  })

  it('(d) MX6 host unreachable: the regular MX over IPv4', async () => {
    const mid = await submit('bob@deadmx6.test')
    const got = await waitForCopy(rx.haraka, mid)
    assert.equal(got.meta.local_ip, V4MX)
    assert.match(sender.log(), /mx6 dead6\.rcpt\.test\[2001:db8:25::66\]:25/)
  })

  it('(e) SRV lookup times out: deferred, then delivered once DNS answers', async () => {
    proxy.mode = 'drop'
    const mid = await submit('bob@mx6rcpt.test')
    // A name server that does not answer is an outage: one line for it, not one per delivery.
    await poll(() => (/\[mx6-send\] dns [^:]+: SRV _mx6\._tcp\.mx6rcpt\.test: .*timed out.*; deliveries whose MX6 lookups fail are deferred until it is back/.test(sender.log()) ? true : undefined), 10000, 'SRV timeout')
    assert.ok(proxy.dropped > 0)
    await sleep(500)
    assert.equal(copies(rx.haraka, mid).length, 0, 'nothing delivered while DNS is silent')
    proxy.mode = 'forward'
    const got = await waitForCopy(rx.haraka, mid, 20000)
    assert.equal(got.meta.local_ip, V4MX, 'unknown sender: MX6 fell back to IPv4')
    assert.match(sender.log(), /Temp failing .* for 5 seconds/)
    assert.match(sender.log(), /\[mx6-send\] dns [^:]+: back after \d+ s; [1-9]\d* lookups without an answer meanwhile/)
  })

  it('null MX is respected even with an MX6 SRV', async () => {
    await submit('bob@nullmx.test')
    await poll(() => (/nullmx\.test sends and receives no email \(NULL MX\)/.test(sender.log()) ? true : undefined), 10000, 'null MX bounce')
  })
})

describe('e2e: mx6-send loses nothing when Haraka is killed around the fallback', function () {
  this.timeout(120000)
  // The receiver can hold its DATA reply on either address while a flag file exists.
  const rx = useReceiver({
    listen: [`[${MX6}]:25`, `${V4MX}:25`],
    ini: `[mx6]\nlisteners=${MX6}`,
    hostList: ['mx6rcpt.test'],
    pluginFiles: {
      'hold-v4': holdPlugin('data_post', 'hold-v4', `target.local.ip === '${V4MX}'`),
      'hold-mx6': holdPlugin('data_post', 'hold-mx6', `target.local.ip === '${MX6}'`),
    },
  })
  // The sender can hold its "delivered" hook: the IPv4 server said 250, the queue file is not yet removed.
  const tx = useSender({ 'hold-delivered': holdPlugin('delivered', 'hold-delivered') })
  const sender = (): HarakaServer => tx.sender

  const flag = (server: HarakaServer, name: string, on: boolean) => (on ? fs.writeFileSync(path.join(server.dir, name), '') : fs.rmSync(path.join(server.dir, name), { force: true }))
  const holding = (server: HarakaServer, name: string) => poll(() => (new RegExp(`hold: holding \\w+ while ${name} exists`).test(server.log()) ? true : undefined), 15000, `${name} reached`)

  async function crashAndRecover(point: { server: () => HarakaServer; flagName: string }): Promise<string> {
    const before = rx.haraka.log().split('\n').length
    flag(point.server(), point.flagName, true)
    const mid = await submit('bob@mx6rcpt.test')
    await holding(point.server(), point.flagName)
    assert.equal(sender().queued().length, 1, 'the message is still in the outbound queue')
    await sender().kill()
    flag(point.server(), point.flagName, false)
    tx.sender = await sender().restart()
    await waitForCopy(rx.haraka, mid, 30000)
    await poll(() => (sender().queued().length === 0 ? true : undefined), 30000, 'queue drained after restart')
    assert.ok(rx.haraka.log().split('\n').length > before)
    return mid
  }

  it('killed while the MX6 host holds its reply (before the fallback): delivered after restart', async () => {
    const mid = await crashAndRecover({ server: () => rx.haraka, flagName: 'hold-mx6' })
    assert.ok(copies(rx.haraka, mid).length >= 1)
    assert.equal(copies(rx.haraka, mid).at(-1)!.meta.local_ip, V4MX)
  })

  it('killed after the fallback, while the IPv4 MX holds its reply: delivered after restart', async () => {
    const mid = await crashAndRecover({ server: () => rx.haraka, flagName: 'hold-v4' })
    assert.ok(copies(rx.haraka, mid).length >= 1)
  })

  it('killed after the IPv4 MX accepted, before the queue file was removed: at worst a duplicate', async () => {
    const mid = await crashAndRecover({ server: sender, flagName: 'hold-delivered' })
    const n = copies(rx.haraka, mid).length
    assert.ok(n >= 1 && n <= 2, `${n} copies`)
  })
})

describe('e2e: mx6-send with a receiver that is not ours (Postfix answering 550 5.5.7 to IPv6)', function () {
  this.timeout(90000)
  const tx = useSender()
  let sender: HarakaServer
  let postfix: PostfixReceiver
  before(async () => {
    sender = tx.sender
    postfix = await PostfixReceiver.start({ listen: ['[2001:db8:25::7]:25', '198.51.100.27:25'], domains: ['pfmx6.test'] })
  })
  after(async () => postfix?.stop())

  it('falls back to IPv4 just the same, without a bounce', async () => {
    const mid = await submit('carol@pfmx6.test')
    const [got] = await postfix.waitForReceived(1, 15000)
    assert.ok(got.raw.includes(`Message-ID: ${mid}`))
    assert.equal(got.clientAddress, SENDER_V4)
    assert.match(postfix.log(), /550 5\.5\.7/)
    assert.match(sender.log(), /\[mx6-send\] MX6 fallback from pfmx6\.rcpt\.test\[2001:db8:25::7\] for pfmx6\.test: 550 /)
    assert.match(sender.log(), /Not sending bounce/)
    await poll(() => (sender.queued().length === 0 ? true : undefined), 5000, 'empty outbound queue')
  })
})

describe('e2e: mx6-send recognises the draft\'s 456 (a 4xx) as the fallback reply', function () {
  this.timeout(90000)
  const rx = useReceiver({ listen: [`[${MX6}]:25`, `${V4MX}:25`], ini: `[mx6]\nlisteners=${MX6}\ncode=456\nstatus=4.5.7`, hostList: ['mx6rcpt.test'] })
  const tx = useSender()
  let sender: HarakaServer
  before(async () => {
    sender = tx.sender
  })

  it('456 after DATA: delivered over IPv4 at once, not after the retry delay', async () => {
    const t0 = Date.now()
    const mid = await submit('bob@mx6rcpt.test')
    const got = await waitForCopy(rx.haraka, mid)
    assert.ok(Date.now() - t0 < 4000)
    assert.equal(got.meta.local_ip, V4MX)
    assert.match(sender.log(), /MX6 fallback from \[2001:db8:25::6\] for mx6rcpt\.test: 456 /)
    assert.match(sender.log(), /Not deferring/)
  })
})

describe('e2e: mx6-send when the MX6 host refuses only some recipients at RCPT', function () {
  this.timeout(90000)
  // A receiver that answers 550 5.5.7 at RCPT for dave@ on the MX6 address only.
  const rcptFallback = `const DSN = require('haraka-dsn')
exports.hook_rcpt = (next, connection, params) => {
  if (connection.local.ip === '${MX6}' && params[0].user === 'dave') return next(DENY, DSN.create(550, 'MX6 fallback for this recipient', 5, 7))
  next()
}`
  const rx = useReceiver({ listen: [`[${MX6}]:25`, `${V4MX}:25`], ini: `[mx6]\nlisteners=${MX6}`, hostList: ['mx6rcpt.test'], pluginFiles: { 'rcpt-fallback': rcptFallback } })
  const tx = useSender()
  let sender: HarakaServer
  before(async () => {
    sender = tx.sender
    await rx.redis.cli('HSET', 'mx6:ip:allow', SENDER_V6, 'sending test host')
  })

  it('accepted recipients stay on IPv6, refused ones go over IPv4, each exactly once', async () => {
    const mid = `<split.${Date.now()}@neutral.test>`
    const r = await smtpSession({
      host: '127.0.0.1',
      port: 2626,
      ehlo: 'client.neutral.test',
      mailFrom: 'someone@neutral.test',
      rcptTo: ['bob@mx6rcpt.test', 'dave@mx6rcpt.test'],
      data: `From: someone@neutral.test\r\nTo: bob@mx6rcpt.test, dave@mx6rcpt.test\r\nSubject: split\r\nMessage-ID: ${mid}\r\n\r\nHello.\r\n`,
    })
    assert.equal(r.dataEnd?.code, 250)
    const got = await poll(() => {
      const c = copies(rx.haraka, mid)
      return c.length >= 2 ? c : undefined
    }, 15000, 'both deliveries')
    const byRcpt = Object.fromEntries(got.map((c) => [c.meta.rcpt_to.join(','), c.meta.local_ip]))
    assert.deepEqual(byRcpt, { 'bob@mx6rcpt.test': MX6, 'dave@mx6rcpt.test': V4MX })
    await poll(() => (sender.queued().length === 0 ? true : undefined), 5000, 'empty outbound queue')
    assert.equal(copies(rx.haraka, mid).length, 2)
    assert.doesNotMatch(sender.log(), /\[mx6-send\] neutral\.test:/)
  })
})
