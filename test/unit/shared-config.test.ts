// One Redis setting for the three plugins, config checks that say what is wrong, and the
// outage log.
import assert from 'node:assert/strict'
import { CachingResolver } from '../../plugins/lib/dns'
import { dnsOutageLog, OutageLog } from '../../plugins/lib/outage'
import { readRedisSettings } from '../../plugins/lib/redis'
import { SettingsReader } from '../../plugins/lib/settings'
import { configChanges, orderWarnings, withSharedRedis } from '../../plugins/lib/shared-config'
import { readLearnConfig } from '../../plugins/mx6-learn/config'
import { readReceiveConfig } from '../../plugins/mx6-receive/config'
import { readSendConfig } from '../../plugins/mx6-send/config'

describe('shared config: one Redis setting', () => {
  it("mx6.ini [redis] is used as it is; a plugin's own [redis] overrides single keys, and the source says so", () => {
    const shared = { redis: { host: '10.0.0.5', port: '6390', prefix: 'site:' } }
    const alone = withSharedRedis({ main: { mode: 'observe' } }, shared, 'mx6-receive.ini')
    assert.deepEqual(alone.ini, { main: { mode: 'observe' }, redis: { host: '10.0.0.5', port: '6390', prefix: 'site:' } })
    assert.equal(alone.source, 'mx6.ini [redis]')
    const own = withSharedRedis({ redis: { port: '6391', password: '' } }, shared, 'mx6-learn.ini')
    assert.deepEqual(own.ini.redis, { host: '10.0.0.5', port: '6391', prefix: 'site:' }, 'an empty value overrides nothing')
    assert.equal(own.source, 'mx6.ini [redis], mx6-learn.ini [redis] overriding port')
    assert.equal(withSharedRedis({}, undefined, 'mx6-send.ini').source, 'the defaults (no [redis] in mx6.ini)')
    // Each plugin reads the same merged section to the same settings.
    const { ini } = withSharedRedis({}, shared, 'x.ini')
    const ports = [readReceiveConfig(ini).config.redis, readLearnConfig(ini).config.redis, readSendConfig(ini).config.redis].map((r) => `${r.host}:${r.port} ${r.prefix}`)
    assert.deepEqual(ports, ['10.0.0.5:6390 site:', '10.0.0.5:6390 site:', '10.0.0.5:6390 site:'])
  })

  for (const [name, section] of [
    ['a URL without its colon', { url: 'redis//host:6390' }],
    ['a URL with a space', { url: 'redis://host:6390/0 x' }],
    ['a port out of range', { port: '99999' }],
    ['a cluster node that is not host:port', { cluster: 'host1:6379 host2' }],
  ] as const) {
    it(`${name}: the settings are invalid as a whole, never a fall back to the defaults`, () => {
      const r = new SettingsReader('mx6.ini')
      const s = readRedisSettings(r, section)
      assert.ok(s.invalid, JSON.stringify(s))
      assert.equal(r.errors.length, 1)
      assert.match(r.errors[0], /: no Redis is used until this is fixed$/)
      assert.doesNotMatch(r.errors[0], /using the default/)
    })
  }
  it('good settings are not invalid', () => {
    assert.equal(readRedisSettings(new SettingsReader('mx6.ini'), { url: 'redis://u:p@127.0.0.1:6390/2' }).invalid, undefined)
  })
})

describe('shared config: unknown keys and bad values', () => {
  it('an unknown key names the nearest known one; an unknown section is reported too', () => {
    const { unknown } = readReceiveConfig({ main: { 'skip-private': 'false', bogus_key: '1', mode: 'observe' }, greeen: { fcrdns: 'true' } })
    assert.deepEqual(unknown, [
      'mx6-receive.ini [main] skip-private: unknown key (did you mean skip_private?); ignored',
      'mx6-receive.ini [main] bogus_key: unknown key; ignored',
      'mx6-receive.ini: unknown section [greeen] (did you mean green?); ignored',
    ])
    assert.deepEqual(readReceiveConfig({ main: { mode: 'observe' }, green: { fcrdns: 'true' }, auth: { spf_veto: 'fail' } }).unknown, [])
    assert.deepEqual(readLearnConfig({ books: { max_age: '3' } }).unknown, ['mx6-learn.ini [books] max_age: unknown key (did you mean max_age_days?); ignored'])
    assert.deepEqual(readSendConfig({ dns: { servers: '127.0.0.53', timeout_ms: '9' } }).unknown.length, 1)
  })
  it('a bad value names the default it falls back to', () => {
    const { errors } = readReceiveConfig({ main: { stats_days: '-1', alignment: 'loose' } })
    assert.ok(errors.includes('mx6-receive.ini [main] stats_days=-1: expected a whole number from 1 to 3660; using the default 30'), errors.join('\n'))
    assert.ok(errors.includes('mx6-receive.ini [main] alignment=loose: expected one of relaxed, strict; using the default relaxed'), errors.join('\n'))
  })
  it('a reload says what changed, passwords masked', () => {
    const a = readReceiveConfig({}).config
    const b = readReceiveConfig({ main: { mode: 'observe' }, redis: { password: 'secret', port: '6390' } }).config
    assert.deepEqual(configChanges(a, b), ['mode: "enforce" -> "observe"', 'redis.port: 6379 -> 6390', 'redis.password: *** -> ***'])
    assert.deepEqual(configChanges(a, readReceiveConfig({}).config), [])
  })
})

describe('shared config: the order of config/plugins', () => {
  const rows: Array<[string, string[], 'wait' | 'defer', RegExp[]]> = [
    ['the documented order', ['spf', 'dkim', 'clamd', 'mx6-receive', 'spamassassin', 'rcpt_to.in_host_list', 'mx6-learn', 'queue/smtp_forward', 'mx6-send'], 'wait', []],
    ['spf after, dkim missing', ['mx6-receive', 'spf', 'queue/smtp_forward'], 'wait', [/^spf is listed after mx6-receive/, /^dkim is not in config\/plugins while undecided=wait/]],
    ['no dkim is fine with undecided=defer', ['spf', 'mx6-receive'], 'defer', []],
    ['a malware scanner after, a content filter before', ['spf', 'dkim', 'spamassassin', 'mx6-receive', 'clamd'], 'wait', [/^clamd is listed after mx6-receive/, /^spamassassin is listed before mx6-receive/]],
    ['npm names and comments', ['#spf', 'haraka-plugin-spf', 'haraka-plugin-dkim', 'haraka-plugin-mx6-receive'], 'wait', []],
    ['mx6-receive not listed', ['spf'], 'wait', []],
  ]
  for (const [name, plugins, undecided, want] of rows) {
    it(name, () => {
      const got = orderWarnings(plugins, undecided)
      assert.equal(got.length, want.length, got.join('\n'))
      want.forEach((re, i) => assert.match(got[i], re))
    })
  }
})

describe('OutageLog', () => {
  it('one line when it starts, a summary per interval while it lasts, one when it ends; nothing per failure', async () => {
    const lines: string[] = []
    const log = new OutageLog('redis redis://127.0.0.1:6379/0', 'IPv6 peers are deferred', 'decisions deferred', { error: (m) => lines.push(`E ${m}`), info: (m) => lines.push(`I ${m}`) }, 40)
    log.fail('connect ECONNREFUSED')
    for (let i = 0; i < 5; i++) {
      log.fail('connect ECONNREFUSED')
      log.hit()
    }
    assert.deepEqual(lines, ['E redis redis://127.0.0.1:6379/0: connect ECONNREFUSED; IPv6 peers are deferred until it is back'])
    await new Promise((r) => setTimeout(r, 60))
    log.hit()
    log.ok()
    log.ok()
    assert.equal(lines.length, 3, lines.join('\n'))
    assert.match(lines[1], /^E redis redis:\/\/127\.0\.0\.1:6379\/0: still unavailable after 0 s; 5 decisions deferred in the last 0 s$/)
    assert.match(lines[2], /^I redis redis:\/\/127\.0\.0\.1:6379\/0: back after 0 s; 6 decisions deferred meanwhile$/)
    log.hit()
    assert.equal(lines.length, 3, 'nothing counted or logged while up')
  })
})

describe('DNS outage log', () => {
  it('a resolver whose servers give no answer: one line when it starts, one when any reply comes back (an NXDOMAIN too), with the count', async () => {
    const lines: string[] = []
    const health = dnsOutageLog(['192.0.2.53'], 'peer DNS signals count as absent', { logerror: (m) => lines.push(`E ${m}`), loginfo: (m) => lines.push(`I ${m}`) })
    let down = true
    const resolver = new CachingResolver(
      {
        query: async () => {
          if (down) throw new Error('queryPtr ETIMEOUT')
          return { rcode: 3, answers: [], authorities: [] }
        },
      },
      { negativeTtl: 0, maxTtl: 0, health },
    )
    for (let i = 0; i < 5; i++) assert.deepEqual(await resolver.ptr(`${i}.example`), { error: `PTR ${i}.example: queryPtr ETIMEOUT` })
    assert.deepEqual(lines, ['E dns 192.0.2.53: PTR 0.example: queryPtr ETIMEOUT; peer DNS signals count as absent until it is back'])
    down = false
    assert.deepEqual(await resolver.ptr('5.example'), { none: 'nxdomain' })
    assert.equal(lines.length, 2, lines.join('\n'))
    assert.match(lines[1], /^I dns 192\.0\.2\.53: back after \d+ s; 5 lookups without an answer meanwhile$/)
    health.close()
  })
  it('a reload with the same name servers keeps the log (an outage under way ends in it); other servers get a new one', () => {
    const log = { logerror: () => undefined, loginfo: () => undefined }
    const first = dnsOutageLog(['192.0.2.53'], 'x', log)
    first.fail('ETIMEOUT')
    assert.equal(dnsOutageLog(['192.0.2.53'], 'x', log, first), first)
    const other = dnsOutageLog(['192.0.2.54'], 'x', log, first)
    assert.notEqual(other, first)
    assert.equal(other.down, false)
    first.close()
  })
})
