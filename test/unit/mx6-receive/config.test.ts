import assert from 'node:assert/strict'
import { describeRedis, REDIS_DEFAULTS } from '../../../plugins/lib/redis'
import fs from 'node:fs'
import path from 'node:path'
import { readReceiveConfig } from '../../../plugins/mx6-receive/config'
import { GREEN_DEFAULTS } from '../../../plugins/mx6-receive/green'

describe('mx6-receive config', () => {
  it('the shipped config/mx6-receive.ini documents every default as it is: its commented values, read back, give the defaults', () => {
    const text = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', '..', 'config', 'mx6-receive.ini'), 'utf8')
    const ini: Record<string, Record<string, string>> = {}
    let section = ''
    for (const line of text.split('\n')) {
      const head = /^\[(\w+)\]$/.exec(line)
      if (head) ini[(section = head[1])] = {}
      const kv = /^;([a-z_]+)=(.*)$/.exec(line)
      if (kv && section) ini[section][kv[1]] = kv[2]
    }
    assert.deepEqual([ini.main.mode, ini.green.fcrdns, ini.auth.spf_veto], ['enforce', 'false', 'fail, softfail, temperror, permerror'])
    const shipped = readReceiveConfig(ini)
    assert.deepEqual(shipped.errors, [])
    assert.deepEqual(shipped.config, readReceiveConfig({}).config)
  })
  it('has safe defaults with no file at all', () => {
    const { config, errors } = readReceiveConfig({})
    assert.deepEqual(errors, [])
    assert.deepEqual(config.policy, { skipPrivate: true, undecided: 'wait', alignment: 'relaxed', green: GREEN_DEFAULTS, auth: { spfVeto: ['fail', 'softfail', 'temperror', 'permerror'], dmarc: true, arc: true } })
    assert.equal(config.policy.green.fcrdns, false, 'weak automatic signals are opt-in')
    assert.equal(config.mode, 'enforce')
    assert.equal(config.recipientDelimiter, '+')
    assert.equal(config.trustedSkipsFilters, true)
    assert.deepEqual(config.spfGuess, { enabled: true, defaultRecord: '' })
    assert.equal(config.signals.heloMatch, 'exact')
    assert.equal(config.signals.asnZone, 'origin6.asn.cymru.com')
    assert.deepEqual({ code: config.defer.code, status: config.defer.status }, { code: 451, status: '4.7.26' })
    assert.equal(config.redis.host, '127.0.0.1')
    assert.equal(config.redis.port, 6379)
    assert.equal(config.redis.prefix, 'mx6:')
    assert.deepEqual(config.cache, { entries: 10000, maxAgeSec: 60 })
  })
  it('reads [cache]; a bad value keeps the default and says so', () => {
    assert.deepEqual(readReceiveConfig({ cache: { entries: '0', max_age: '5' } }).config.cache, { entries: 0, maxAgeSec: 5 })
    const bad = readReceiveConfig({ cache: { entries: '-3', max_age: 'soon' } })
    assert.deepEqual(bad.config.cache, { entries: 10000, maxAgeSec: 60 })
    assert.equal(bad.errors.length, 2, bad.errors.join('\n'))
    assert.match(bad.errors.join('\n'), /\[cache\] entries/)
  })
  it('reads [followup] write_window_ms (default 50, 0 to 1000); a bad value keeps the default and says so', () => {
    assert.equal(readReceiveConfig({}).config.followup.writeWindowMs, 50)
    assert.equal(readReceiveConfig({ followup: { write_window_ms: '0' } }).config.followup.writeWindowMs, 0)
    const bad = readReceiveConfig({ followup: { write_window_ms: '5000' } })
    assert.equal(bad.config.followup.writeWindowMs, 50)
    assert.match(bad.errors.join('\n'), /\[followup\] write_window_ms/)
  })
  it('reads every key', () => {
    const { config, errors } = readReceiveConfig({
      main: { mode: 'observe', skip_private: false, undecided: 'defer', alignment: 'strict', recipient_delimiter: '-', lint_interval: '0', stats_days: '7' },
      defer: { code: '450', status: '4.7.0', text: 'try IPv4', auth_fail_text: 'SPF said no; try IPv4' },
      auth: { spf_veto: 'fail, permerror' },
      redis: { url: 'redis://u:secret@127.0.0.1:6380/2', prefix: 'site:', timeout: '250' },
    })
    assert.deepEqual(errors, [])
    assert.deepEqual({ ...config.policy, green: undefined }, { skipPrivate: false, undecided: 'defer', alignment: 'strict', green: undefined, auth: { spfVeto: ['fail', 'permerror'], dmarc: true, arc: true } })
    assert.equal(config.mode, 'observe')
    assert.equal(config.recipientDelimiter, '-')
    assert.equal(config.lintInterval, 0)
    assert.equal(config.statsDays, 7)
    assert.deepEqual(config.defer, { code: 450, status: '4.7.0', text: 'try IPv4', authFailText: 'SPF said no; try IPv4' })
    assert.equal(config.redis.prefix, 'site:')
    assert.equal(config.redis.timeoutMs, 250)
  })
  it('an empty recipient_delimiter disables +tag stripping', () => {
    assert.equal(readReceiveConfig({ main: { recipient_delimiter: '' } }).config.recipientDelimiter, '')
  })
  it('reports bad values and keeps the defaults', () => {
    const { config, errors } = readReceiveConfig({
      main: { undecided: 'maybe', alignment: 'loose', stats_days: '-1', skip_private: 'perhaps', mode: 'pilot' },
      defer: { status: '5.7.1' },
      redis: { port: '99999', prefix: 'has space', url: 'http://x' },
      auth: { spf_veto: 'fail,pass' },
    })
    assert.equal(config.mode, 'enforce')
    assert.deepEqual(config.policy.auth.spfVeto, ['fail', 'softfail', 'temperror', 'permerror'])
    assert.match(errors.join('\n'), /\[auth\] spf_veto=fail,pass: "pass" not among fail, softfail, neutral, temperror, permerror; using the default fail,softfail,temperror,permerror/)
    assert.equal(config.policy.undecided, 'wait')
    assert.equal(config.policy.alignment, 'relaxed')
    assert.equal(config.policy.skipPrivate, true)
    assert.equal(config.statsDays, 30)
    assert.equal(config.defer.status, '4.7.26')
    assert.equal(config.redis.port, 6379)
    assert.equal(config.redis.prefix, 'mx6:')
    assert.equal(config.redis.url, '')
    // The three bad [redis] values are one error: those settings are not used at all.
    assert.equal(errors.length, 8, errors.join('\n'))
    assert.ok(config.redis.invalid)
  })
  it('a 5xx deferral code or status is refused: a deferral must stay temporary', () => {
    for (const defer of [{ code: '550' }, { status: '5.7.1' }, { code: '451', status: '5.7.1' }, { status: '4.7' }]) {
      const { config, errors } = readReceiveConfig({ defer })
      assert.equal(config.defer.code, 451, JSON.stringify(defer))
      assert.equal(config.defer.status, '4.7.26')
      assert.equal(errors.length, 1)
    }
  })
  it('never shows the Redis password', () => {
    assert.equal(describeRedis({ ...REDIS_DEFAULTS, url: 'redis://u:secret@10.0.0.1:6380/2' }).includes('secret'), false)
    assert.equal(describeRedis({ ...REDIS_DEFAULTS, password: 'secret' }).includes('secret'), false)
  })
  it('reads [mx6]: listeners, the fallback code (5xx or 4xx with a matching status), URL, authserv-id', () => {
    const { config, errors } = readReceiveConfig({
      mx6: { listeners: '2001:db8:25::6, [2001:db8:25::7]:2525 192.0.2.1', code: '456', status: '4.5.7', registration_url: 'https://x.example/r', authserv_id: 'ar.example' },
    })
    assert.deepEqual(config.mx6.listeners, [{ ip: '2001:db8:25::6', port: null }, { ip: '2001:db8:25::7', port: 2525 }])
    assert.deepEqual([config.mx6.code, config.mx6.status], [456, '4.5.7'])
    assert.equal(config.mx6.registrationUrl, 'https://x.example/r')
    assert.equal(config.mx6.authservId, 'ar.example')
    assert.equal(errors.length, 1)
    assert.match(errors[0], /192\.0\.2\.1.*not an IPv6 address/)
  })
  it('refuses a fallback code whose status class differs, a bad URL and a bad authserv-id', () => {
    const { config, errors } = readReceiveConfig({ mx6: { code: '550', status: '4.5.7', registration_url: 'javascript:alert(1)', authserv_id: 'a;b' } })
    assert.deepEqual([config.mx6.code, config.mx6.status], [550, '5.5.7'])
    assert.equal(config.mx6.registrationUrl, '')
    assert.equal(config.mx6.authservId, '')
    assert.equal(errors.length, 3)
  })
  it('has no MX6 listeners by default', () => {
    const { config } = readReceiveConfig({})
    assert.deepEqual(config.mx6.listeners, [])
    assert.deepEqual([config.mx6.code, config.mx6.status], [550, '5.5.7'])
  })
  it('reads [green] and [spf_guess]', () => {
    const { config, errors } = readReceiveConfig({
      green: { ip_green: false, fcrdns: false, host_green: false, asn: true, domain_green: false, history: false, history_min_count: '3', history_min_days: '7', history_max_idle_days: '14', fcrdns_helo_match: 'domain', asn_zone: 'origin6.asn.test', dns_servers: '127.0.0.53' },
      spf_guess: { enabled: false, default: 'v=spf1 mx/24 ?all' },
      main: { trusted_skips_filters: false },
    })
    assert.deepEqual(errors, [])
    assert.deepEqual(config.policy.green, { ipGreen: false, fcrdns: false, hostGreen: false, asn: true, domainGreen: false, history: { enabled: false, minCount: 3, minDays: 7, maxIdleDays: 14 } })
    assert.deepEqual(config.signals, { heloMatch: 'domain', asnZone: 'origin6.asn.test', dnsServers: ['127.0.0.53'], dnsTimeoutMs: 3000 })
    assert.deepEqual(config.spfGuess, { enabled: false, defaultRecord: 'v=spf1 mx/24 ?all' })
    assert.equal(config.trustedSkipsFilters, false)
  })
  it('refuses a default SPF guess that is not an SPF record', () => {
    const { config, errors } = readReceiveConfig({ spf_guess: { default: 'include:x' } })
    assert.equal(config.spfGuess.defaultRecord, '')
    assert.equal(errors.length, 1)
  })
})
