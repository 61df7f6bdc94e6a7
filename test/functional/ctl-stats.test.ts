// mx6ctl stats and fallbacks, Redis outages and --config, against private real redis-servers.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { today } from '../../plugins/lib/store'
import { ctl, useCtlRedis } from '../support/ctl'
import { tempDir } from '../support/proc'
import { RedisServer } from '../support/redis'

const day = (ago: number): string => today(new Date(Date.now() - ago * 86_400_000))
const iso = (d: string): string => `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}`

describe('functional: mx6ctl stats, fallbacks, outages and --config', function () {
  this.timeout(30000)
  const redis = useCtlRedis()
  let server: RedisServer

  before(async () => {
    server = redis.server
  })
  beforeEach(async () => {
    process.env.MX6_REDIS_URL = server.url
    await server.cli('FLUSHALL')
  })

  async function seedStats(): Promise<void> {
    await server.cli('HSET', `mx6:stats:${day(0)}`, 'rcpt.trusted.ip:allow', '3', 'rcpt.defer.none', '10', 'data_post.trusted.book', '2', 'data_post.fallback.none', '1')
    await server.cli('HSET', `mx6:stats:${day(1)}`, 'rcpt.green.fcrdns', '4', 'rcpt.defer.none', '5')
    await server.cli('HSET', `mx6:stats:${day(6)}`, 'rcpt.trusted.ip:allow', '1')
    // Outside the default 7 days.
    await server.cli('HSET', `mx6:stats:${day(7)}`, 'rcpt.trusted.ip:allow', '100')
  }

  it('stats: a table per day and verdict, then per verdict and rule, over the last 7 days in one pipeline', async () => {
    await seedStats()
    await server.cli('CONFIG', 'RESETSTAT')
    const r = await ctl('stats')
    assert.equal(r.code, 0, r.err)
    const lines = r.out.split('\n')
    // Messages (after DATA) and recipients (decided at RCPT) apart, never added up.
    assert.equal(lines[0], `mx6-receive ${iso(day(6))} .. ${iso(day(0))} (UTC, 7 days): 3 messages decided after DATA, 23 recipients decided at RCPT`)
    assert.match(r.out, /^day\s+trusted\s+fallback\s+messages\s+rcpt$/m)
    assert.match(r.out, new RegExp(`^${iso(day(0))}\\s+2\\s+1\\s+3\\s+13$`, 'm'))
    assert.match(r.out, new RegExp(`^${iso(day(1))}\\s+0\\s+0\\s+0\\s+9$`, 'm'))
    assert.match(r.out, new RegExp(`^${iso(day(6))}\\s+0\\s+0\\s+0\\s+1$`, 'm'))
    assert.match(r.out, new RegExp(`^${iso(day(3))}\\s+0\\s+0\\s+0\\s+0$`, 'm'))
    assert.match(r.out, /^all\s+2\s+1\s+3\s+23$/m)
    assert.match(r.out, /^verdict\s+rule\s+rcpt\s+data_post\s+total$/m)
    assert.match(r.out, /^trusted\s+ip:allow\s+4\s+0\s+4$/m)
    assert.match(r.out, /^trusted\s+book\s+0\s+2\s+2$/m)
    assert.match(r.out, /^defer\s+none\s+15\s+0\s+15$/m)
    assert.match(r.out, /^fallback\s+none\s+0\s+1\s+1$/m)
    // Seven HGETALLs, one round trip (one pipeline, no per-day waiting).
    const stats = await server.cli('INFO', 'commandstats')
    assert.match(stats, /^cmdstat_hgetall:calls=7,/m)
  })

  it('stats --days N --json gives the same data', async () => {
    await seedStats()
    const r = await ctl('stats', '--days', '8', '--json')
    assert.equal(r.code, 0, r.err)
    const j = JSON.parse(r.out)
    assert.equal(j.from, iso(day(7)))
    assert.equal(j.to, iso(day(0)))
    assert.equal(j.days.length, 8)
    assert.equal(j.total, 126)
    assert.deepEqual(j.totals, { 'rcpt.trusted.ip:allow': 104, 'rcpt.defer.none': 15, 'data_post.trusted.book': 2, 'data_post.fallback.none': 1, 'rcpt.green.fcrdns': 4 })
    assert.deepEqual(j.days[7], {
      day: iso(day(0)),
      key: `mx6:stats:${day(0)}`,
      total: 16,
      counts: { 'rcpt.trusted.ip:allow': 3, 'rcpt.defer.none': 10, 'data_post.trusted.book': 2, 'data_post.fallback.none': 1 },
    })
    assert.deepEqual(j.days[0].counts, { 'rcpt.trusted.ip:allow': 100 })
    assert.deepEqual(j.verdicts, { trusted: 106, defer: 15, fallback: 1, green: 4 })
    const one = JSON.parse((await ctl('stats', '--days', '1', '--json')).out)
    assert.equal(one.total, 16)
    for (const bad of ['0', 'x', '99999', '-1']) assert.equal((await ctl('stats', '--days', bad)).code, 2, bad)
  })

  it('stats: decisions of mode=observe are counted apart (would-defer, would-fallback), in the table and in --json', async () => {
    await server.cli('HSET', `mx6:stats:${day(0)}`, 'rcpt.defer.none', '2', 'rcpt.would-defer.none', '5', 'data_post.would-defer.auth-fail', '3', 'data_post.would-fallback.none', '1')
    const r = await ctl('stats')
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^mode=observe: 8 would-defer and 1 would-fallback were recorded only \(that mail was accepted\)$/m)
    assert.match(r.out, /^day\s+would-defer\s+would-fallback\s+messages\s+rcpt$/m)
    assert.match(r.out, /^would-defer\s+auth-fail\s+0\s+3\s+3$/m)
    const j = JSON.parse((await ctl('stats', '--json')).out)
    assert.deepEqual(j.verdicts, { defer: 2, 'would-defer': 8, 'would-fallback': 1 })
    assert.deepEqual([j.messages, j.recipients], [4, 7])
  })

  it('stats with no counters says so; junk values are warned about, not summed', async () => {
    const none = await ctl('stats')
    assert.equal(none.code, 0)
    assert.match(none.out, /^no decisions counted /)
    await server.cli('HSET', `mx6:stats:${day(0)}`, 'rcpt.defer.none', 'lots', 'rcpt.green.fcrdns', '2')
    const r = await ctl('stats', '--json')
    assert.equal(JSON.parse(r.out).total, 2)
    assert.match(r.err, /"rcpt.defer.none": "lots" is not a count; ignored/)
  })

  it('fallbacks: newest first, one readable block each, --limit, --json', async () => {
    const entry = (i: number): string =>
      JSON.stringify({
        time: `2026-11-28T10:00:0${i}.000Z`,
        domain: `d${i}.example`,
        host: `mx6.d${i}.example[2001:db8::${i}]`,
        code: '550',
        status: '5.5.7',
        reply: `MX6 fallback: not accepted over IPv6 (${i})\nAuthentication-Results: mx.d${i}.example; spf=none\u001b[2J`,
        recipients: [`a${i}@d${i}.example`, `b${i}@d${i}.example`],
        mail_from: `s${i}@sender.example`,
        queue_id: `Q${i}`,
      })
    // mx6-send LPUSHes: the last pushed is the newest.
    await server.cli('LPUSH', 'mx6:send:fallbacks', entry(1), 'not json', entry(3))
    const r = await ctl('fallbacks')
    assert.equal(r.code, 0, r.err)
    const blocks = r.out.split('\n\n')
    assert.equal(blocks[0], 'mx6:send:fallbacks: 3 fallbacks, newest first')
    assert.equal(
      blocks[1],
      [
        '2026-11-28T10:00:03.000Z  d3.example  from MX6 host mx6.d3.example[2001:db8::3]',
        '  reply:      550 5.5.7 MX6 fallback: not accepted over IPv6 (3)',
        '              "Authentication-Results: mx.d3.example; spf=none\\u001b[2J"',
        '  from:       s3@sender.example',
        '  recipients: a3@d3.example, b3@d3.example',
        '  queue id:   Q3',
      ].join('\n'),
    )
    assert.equal(blocks[2], '#2: not a JSON object: not json')
    assert.match(blocks[3], /^2026-11-28T10:00:01.000Z  d1.example/)
    assert.ok(!r.out.includes('\u001b'))

    const limited = await ctl('fallbacks', '--limit', '1')
    assert.match(limited.out, /^mx6:send:fallbacks: newest 1 of 3 fallbacks, newest first\n\n2026-11-28T10:00:03/)
    assert.doesNotMatch(limited.out, /d1\.example/)
    const json = JSON.parse((await ctl('fallbacks', '--json', '--limit', '2')).out)
    assert.equal(json.length, 2)
    assert.deepEqual(json[0], JSON.parse(entry(3)))
    assert.deepEqual(json[1], { unparseable: 'not json' })
    assert.equal((await ctl('fallbacks', '--limit', '0')).code, 2)
  })

  it('fallbacks on an empty log says so', async () => {
    const r = await ctl('fallbacks')
    assert.equal(r.code, 0)
    assert.equal(r.out, 'no fallbacks recorded (mx6:send:fallbacks is empty)')
    assert.deepEqual(JSON.parse((await ctl('fallbacks', '--json')).out), [])
  })

  it('a stopped Redis: exit 1 and one line "cannot connect to redis ...", no stack trace, for every command', async () => {
    const gone = await RedisServer.start()
    await gone.stop()
    process.env.MX6_REDIS_URL = gone.url
    for (const argv of [['allow', 'ip', 'ls'], ['green', 'asn', 'add', '64500'], ['book', 'ls', 'bob@example.com'], ['lint'], ['stats'], ['fallbacks']]) {
      const t0 = Date.now()
      const r = await ctl(...argv)
      assert.equal(r.code, 1, argv.join(' '))
      assert.match(r.err, new RegExp(`^mx6ctl ${argv[0]}: cannot connect to redis redis://127\\.0\\.0\\.1:${gone.port}`), argv.join(' '))
      assert.equal(r.err.split('\n').length, 1, r.err)
      assert.doesNotMatch(r.err, /\bat .*\.js:\d+/)
      assert.equal(r.out, '')
      assert.ok(Date.now() - t0 < 5000)
    }
  })

  it('--config <dir> reads [redis] port from a Haraka-style config/mx6-receive.ini', async () => {
    delete process.env.MX6_REDIS_URL
    const haraka = tempDir('ctl-config')
    fs.mkdirSync(path.join(haraka, 'config'))
    fs.writeFileSync(path.join(haraka, 'config', 'mx6-receive.ini'), `[redis]\nhost=127.0.0.1\nport=${server.port}\n`)
    const add = await ctl('--config', haraka, 'allow', 'domain', 'add', 'example.org', 'via config')
    assert.equal(add.code, 0, add.err)
    assert.equal(await server.cli('HGET', 'mx6:domain:allow', 'example.org'), 'via config')
    // The config/ directory itself works too.
    const ls = await ctl('--config', path.join(haraka, 'config'), 'allow', 'domain', 'ls')
    assert.equal(ls.code, 0, ls.err)
    assert.match(ls.out, /example\.org\s+via config/)
    const missing = await ctl('--config', path.join(haraka, 'nope'), 'stats')
    assert.equal(missing.code, 2)
    assert.equal(missing.err, `mx6ctl stats: --config ${path.join(haraka, 'nope')}: no such directory; see \`mx6ctl --help\``)
  })
})
