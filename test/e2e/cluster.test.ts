// The main scenarios on a Redis Cluster (three masters on loopback): the keys of one
// decision live in different hash slots, and nothing may fail with CROSSSLOT (issue 8, part).
import assert from 'node:assert/strict'
import { Keys } from '../../plugins/lib/keys'
import { createRedisClient, REDIS_DEFAULTS } from '../../plugins/lib/redis'
import { RedisListStore } from '../../plugins/lib/store'
import { RedisCluster } from '../support/cluster'
import { HarakaServer } from '../support/haraka'
import { requireTestbed } from '../support/net'
import { poll, runOk } from '../support/proc'
import { V4MX, V6MX } from '../support/receiver'
import { ctl } from '../support/ctl'
import { smtpSession } from '../support/smtp'

const msg = (from: string, subject: string) => `From: ${from}\r\nTo: bob@rcpt.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@test>\r\n\r\nHello.\r\n`

describe('e2e: mx6-receive and mx6-learn on a Redis Cluster', function () {
  this.timeout(90000)
  let cluster: RedisCluster
  let haraka: HarakaServer

  before(async function () {
    this.timeout(60000)
    requireTestbed()
    cluster = await RedisCluster.start()
    const redis = `[redis]\ncluster=${cluster.seeds.join(',')}\ntimeout=1000\n`
    haraka = await HarakaServer.start({
      listen: [`[${V6MX}]:25`, `${V4MX}:25`, '127.0.0.1:587'],
      plugins: ['submission', 'spf', 'dkim', 'mx6-receive', 'rcpt_to.in_host_list', 'mx6-learn', 'queue-capture'],
      pluginFiles: { submission: "exports.hook_connect_init = (next, c) => { if (c.local.port === 587) c.relaying = true; next() }" },
      config: { 'mx6-receive.ini': `[main]\nlint_interval=1\n${redis}`, 'mx6-learn.ini': redis, 'outbound.ini': 'disabled=true\n' },
    })
    await cluster.cli('HSET', 'mx6:ip:allow', '2001:db8:7::700/120', 'partner')
    await cluster.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner')
  })
  after(async () => {
    await haraka?.stop()
    await cluster?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(haraka.log().slice(-6000))
  })

  it('the lists and the books really are spread over different slots', async () => {
    const slots = new Set(await Promise.all(['mx6:ip:allow', 'mx6:domain:allow', 'mx6:book:bob@rcpt.test', 'mx6:ip:green'].map((k) => cluster.keySlot(k))))
    assert.ok(slots.size >= 3, [...slots].join(','))
  })

  it('unknown IPv6 peer deferred; allow-listed CIDR, SPF-authenticated allowed domain and address book accepted', async () => {
    const send = (peer: string, mailFrom: string, subject: string) => smtpSession({ host: V6MX, port: 25, localAddress: peer, ehlo: 'x.neutral.test', mailFrom, rcptTo: ['bob@rcpt.test'], data: msg(mailFrom, subject) })
    assert.equal((await send('2001:db8:7::800', 'a@neutral.test', 'unknown')).dataEnd?.code, 451)
    assert.equal((await send('2001:db8:7::710', 'a@neutral.test', 'cidr')).dataEnd?.code, 250)
    assert.equal((await send('2001:db8:7::801', 'news@allowed.test', 'domain')).dataEnd?.code, 250)
    await cluster.cli('SADD', 'mx6:book:bob@rcpt.test', 'friend@other.test')
    assert.equal((await send('2001:db8:7::802', 'friend@other.test', 'book')).dataEnd?.code, 250)
    assert.doesNotMatch(haraka.log(), /CROSSSLOT|list lookup failed/)
    assert.match(haraka.log(), /peer list cache off: not used on a Redis Cluster; every peer lookup goes to Redis/)
  })

  it('counters, follow-up fingerprints and the lint scan work across slots', async () => {
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '')
    await poll(async () => (/rcpt\.trusted\.ip:allow/.test(await cluster.cli('HGETALL', `mx6:stats:${day}`)) ? true : undefined), 5000, 'counters')
    assert.ok(Number(await cluster.cli('ZCARD', 'mx6:fp:index')) >= 1)
    await cluster.cli('HSET', 'mx6:ip:allow', '2001:DB8:7::900', 'typed by hand')
    await poll(() => (/"2001:DB8:7::900" never matches/.test(haraka.log()) ? true : undefined), 5000, 'lint warning')
  })

  it('the follow-up indexes stay bounded on the cluster: what leaves an index is deleted with it, node by node', async () => {
    const keys = new Keys('bnd:')
    const client = createRedisClient({ ...REDIS_DEFAULTS, cluster: cluster.seeds, timeoutMs: 1000 })
    const errors: string[] = []
    const store = new RedisListStore(client, keys, { timeoutMs: 1000, statsDays: 1, onWriteError: (_, err) => errors.push(err.message) })
    try {
      await poll(() => (client.status === 'ready' ? true : undefined), 10000, 'cluster client ready')
      const t = 1_800_000_000
      const record = (i: number) => store.recordAttempt(() => ({ envelopeHash: `e${i}`, midHash: `m${i}`, fields: { time: String(t + i), phase: 'data_post', verdict: 'defer' } }), 3600, 3)
      const fpKeys = async () => (await Promise.all(cluster.ports.map(async (p) => (await runOk('redis-cli', ['-p', String(p), 'KEYS', 'bnd:fp:*'])).trim().split('\n').filter(Boolean)))).flat().sort()
      const latest = [7, 8, 9]
      const want = [keys.attempts, keys.attemptMessageIds, ...latest.map((i) => keys.attempt(`e${i}`)), ...latest.map((i) => keys.attemptByMessageId(`m${i}`))].sort()
      // Each record has landed on every node before the next (the commands of one record go to
      // different nodes, each on its own: with a bound as small as 3, a record still on its way
      // could already be among the oldest).
      const landed = async (i: number) => {
        const ttls = await Promise.all([keys.attempt(`e${i}`), keys.attemptByMessageId(`m${i}`)].map(async (k) => Number(await cluster.cli('TTL', k))))
        const indexed = await Promise.all([cluster.cli('ZSCORE', keys.attempts, `e${i}`), cluster.cli('ZSCORE', keys.attemptMessageIds, `m${i}`)])
        return ttls.every((x) => x > 0) && indexed.every((x) => x !== '') ? true : undefined
      }
      // One at a time, as deferrals come: each write trims what the bound leaves out.
      for (let i = 0; i < 10; i++) {
        record(i)
        await poll(() => landed(i), 5000, `record ${i} written`)
      }
      let got: string[] = []
      const exact = async () => {
        got = await fpKeys()
        return JSON.stringify(got) === JSON.stringify(want) ? true : undefined
      }
      await poll(exact, 5000, 'the keys of the latest 3').catch(() => undefined)
      assert.deepEqual({ keys: got, errors }, { keys: want, errors: [] })
      assert.ok(new Set(await Promise.all(want.map((k) => cluster.keySlot(k)))).size >= 3, 'the keys live in different slots')
    } finally {
      await store.close()
    }
  })

  it('mx6-learn learns a book on the cluster, and the reply is then accepted', async () => {
    const r = await smtpSession({ host: '127.0.0.1', port: 587, ehlo: 'laptop.rcpt.test', mailFrom: 'carol@rcpt.test', rcptTo: ['pal@other.test'], data: msg('carol@rcpt.test', 'out') })
    assert.equal(r.dataEnd?.code, 250)
    await poll(async () => ((await cluster.cli('SISMEMBER', 'mx6:book:carol@rcpt.test', 'pal@other.test')) === '1' ? true : undefined), 5000, 'learned book')
    const reply = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::803', ehlo: 'x.other.test', mailFrom: 'pal@other.test', rcptTo: ['carol@rcpt.test'], data: msg('pal@other.test', 'reply') })
    assert.equal(reply.dataEnd?.code, 250)
    assert.doesNotMatch(haraka.log(), /CROSSSLOT|nothing learned/)
  })

  it('mx6ctl works on the cluster through the instance config (add, ls, book, stats, followup, lint)', async () => {
    const run = (...argv: string[]) => ctl('--config', haraka.dir, ...argv)
    assert.equal((await run('allow', 'ip', 'add', '2001:db8:7::b00/120', 'from mx6ctl')).code, 0)
    assert.equal(await cluster.cli('HGET', 'mx6:ip:allow', '2001:db8:7::b00/120'), 'from mx6ctl')
    const ls = await run('allow', 'ip', 'ls', '--json')
    assert.equal(JSON.parse(ls.out).entries['2001:db8:7::b00/120'], 'from mx6ctl')
    assert.equal((await run('book', 'add', 'dave@rcpt.test', 'pal@other.test')).code, 0)
    assert.equal(await cluster.cli('SISMEMBER', 'mx6:book:dave@rcpt.test', 'pal@other.test'), '1')
    const stats = await run('stats', '--json')
    assert.equal(stats.code, 0, stats.err)
    assert.ok(JSON.parse(stats.out).total > 0)
    const fu = await run('followup', '--json')
    assert.equal(fu.code, 0, fu.err)
    assert.ok(JSON.parse(fu.out).deferred >= 1)
    // The hand-typed upper-case entry from the test above is found (and nothing crashes on SCAN per master).
    const lint = await run('lint')
    assert.equal(lint.code, 1)
    assert.match(lint.out, /2001:DB8:7::900/)
  })
})
