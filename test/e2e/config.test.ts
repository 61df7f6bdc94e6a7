// Configuring the suite as a postmaster does: one Redis setting (config/mx6.ini) for the three
// plugins, settings that cannot be used, and the warnings a start-up gives.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { HarakaServer } from '../support/haraka'
import { requireTestbed } from '../support/net'
import { poll } from '../support/proc'
import { V4MX, V6MX } from '../support/receiver'
import { RedisServer } from '../support/redis'
import { smtpSession, type SessionResult } from '../support/smtp'

const ALL = ['spf', 'dkim', 'mx6-receive', 'rcpt_to.in_host_list', 'mx6-learn', 'queue-capture', 'mx6-send']

function send(peer: string): Promise<SessionResult> {
  const v6 = peer.includes(':')
  return smtpSession({ host: v6 ? V6MX : V4MX, port: 25, localAddress: peer, ehlo: 'x.neutral.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'From: a@neutral.test\r\nSubject: config\r\n\r\nHello.\r\n' })
}
const code = (r: SessionResult) => r.dataEnd?.code ?? r.rcpt[0]?.code

describe('e2e: one Redis setting for the three plugins (config/mx6.ini)', function () {
  this.timeout(60000)
  let a: RedisServer
  let b: RedisServer
  let haraka: HarakaServer
  before(async function () {
    this.timeout(30000)
    requireTestbed()
    ;[a, b] = await Promise.all([RedisServer.start(), RedisServer.start()])
    // The plugins' own files have no [redis]: mx6.ini's is the one in force.
    haraka = await HarakaServer.start({
      listen: [`[${V6MX}]:25`, `${V4MX}:25`],
      plugins: ALL,
      config: { 'mx6.ini': `[redis]\nport=${a.port}\ntimeout=300\n`, 'mx6-receive.ini': '[main]\nlint_interval=0\n', 'mx6-learn.ini': '', 'mx6-send.ini': '' },
    })
  })
  after(async () => {
    await haraka?.stop()
    await a?.stop()
    await b?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(haraka.log().slice(-5000))
  })

  it('each plugin says it uses mx6.ini [redis]', () => {
    const log = haraka.log()
    assert.match(log, new RegExp(`\\[mx6-receive\\] using redis redis://127\\.0\\.0\\.1:${a.port}/0 prefix mx6: \\(settings: mx6\\.ini \\[redis\\]\\)`))
    assert.match(log, new RegExp(`\\[mx6-learn\\] redis redis://127\\.0\\.0\\.1:${a.port}/0 \\(settings: mx6\\.ini \\[redis\\]\\)`))
    assert.match(log, new RegExp(`\\[mx6-send\\] redis redis://127\\.0\\.0\\.1:${a.port}/0 for the fallback log \\(settings: mx6\\.ini \\[redis\\]\\)`))
  })

  it('changing mx6.ini once moves all three plugins to the other Redis, without a restart', async () => {
    await b.cli('HSET', 'mx6:ip:allow', '2001:db8:7::61', 'listed in the second Redis only')
    assert.equal(code(await send('2001:db8:7::61')), 451, 'the first Redis does not list it')
    const mark = haraka.logSize()
    fs.writeFileSync(path.join(haraka.dir, 'config', 'mx6.ini'), `[redis]\nport=${b.port}\ntimeout=300\n`)
    const change = `redis.port: ${a.port} -> ${b.port}`
    const reloaded = await poll(() => {
      const since = haraka.logSince(mark)
      const plugins = ['mx6-receive', 'mx6-learn', 'mx6-send'].filter((p) => since.includes(`[${p}] configuration reloaded: ${change}`))
      return plugins.length === 3 ? plugins : undefined
    }, 20000, 'the three plugins to reload mx6.ini')
    assert.deepEqual(reloaded, ['mx6-receive', 'mx6-learn', 'mx6-send'])
    assert.match(haraka.logSince(mark), new RegExp(`\\[mx6-receive\\] using redis redis://127\\.0\\.0\\.1:${b.port}/0 `))
    // The new connection is opened at the reload; a message may still beat it by a few ms.
    const r = await poll(async () => ((c) => (c === 250 ? c : undefined))(code(await send('2001:db8:7::61'))), 5000, 'the allow-listed peer accepted', 200)
    assert.equal(r, 250)
  })
})

describe('e2e: Redis settings that cannot be used, and start-up warnings', function () {
  this.timeout(60000)
  let redis: RedisServer
  before(async function () {
    this.timeout(30000)
    requireTestbed()
    redis = await RedisServer.start()
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::62', 'would be trusted in database 0')
  })
  after(async () => redis?.stop())

  for (const [name, redisIni, logged] of [
    ['a malformed URL', 'url=redis//127.0.0.1:6390', /\[mx6-receive\] redis settings invalid \(mx6\.ini \[redis\] url=redis\/\/127\.0\.0\.1:6390: expected a redis:\/\/ or rediss:\/\/ URL\): no Redis is used/],
    ['a database the server refuses', 'db=99', /\[mx6-receive\] redis redis:\/\/127\.0\.0\.1:\d+\/99: database 99 refused \(ERR DB index is out of range\): no Redis is used/],
  ] as const) {
    it(`${name}: no fall back to another server or database; IPv6 deferred, IPv4 untouched, one clear line`, async () => {
      const haraka = await HarakaServer.start({
        listen: [`[${V6MX}]:25`, `${V4MX}:25`],
        plugins: ['spf', 'dkim', 'mx6-receive', 'rcpt_to.in_host_list', 'queue-capture'],
        config: { 'mx6.ini': `[redis]\nport=${redis.port}\n${redisIni}\ntimeout=300\n`, 'mx6-receive.ini': '[main]\nlint_interval=0\nundecided=defer\n' },
      })
      try {
        await poll(() => (logged.test(haraka.log()) ? true : undefined), 5000, 'the line saying the settings are not used')
        assert.equal(code(await send('2001:db8:7::62')), 451, 'listed in database 0, which is not the one configured')
        assert.equal(code(await send('192.0.2.62')), 250)
      } finally {
        await haraka.stop()
      }
    })
  }

  it('warns at start-up about the plugin order and an unknown key, naming the fix', async () => {
    const haraka = await HarakaServer.start({
      listen: [`[${V6MX}]:25`],
      plugins: ['mx6-receive', 'spf', 'rcpt_to.in_host_list', 'queue-capture'],
      config: { 'mx6.ini': `[redis]\nport=${redis.port}\n`, 'mx6-receive.ini': '[main]\nskip-private=false\nbogus_key=1\n' },
    })
    try {
      const log = haraka.log()
      assert.match(log, /\[mx6-receive\] config\/plugins: spf is listed after mx6-receive/)
      assert.match(log, /\[mx6-receive\] config\/plugins: dkim is not in config\/plugins while undecided=wait/)
      assert.match(log, /\[mx6-receive\] mx6-receive\.ini \[main\] skip-private: unknown key \(did you mean skip_private\?\); ignored/)
      assert.match(log, /\[mx6-receive\] mx6-receive\.ini \[main\] bogus_key: unknown key; ignored/)
    } finally {
      await haraka.stop()
    }
  })
})
