// Reputation providers' DNS allowlists: names, answer mapping, failures, TTL caching, the
// trouble log, the [provider:<name>] sections, and what their answers decide.
import assert from 'node:assert/strict'
import { CachingResolver, type DnsClient, type RawReply, type RrType } from '../../../plugins/lib/dns'
import { readReceiveConfig } from '../../../plugins/mx6-receive/config'
import { decideRcpt, type RcptFacts } from '../../../plugins/mx6-receive/decide'
import { decideData, type DataFacts } from '../../../plugins/mx6-receive/decide-data'
import { cachedPeerSignals, gatherPeerSignals, type PeerSignals } from '../../../plugins/mx6-receive/peer-signals'
import { counterName } from '../../../plugins/mx6-receive/record'
import { bestZone, cachedZone, mapAnswers, nibbles, parsePatterns, queryZone, zoneName, ZoneTroubleLog, type ZoneConfig, type ZoneResult } from '../../../plugins/mx6-receive/reputation'
import { providerCounts } from '../../../scripts/ctl/stats'
import { Session } from '../../../plugins/mx6-receive/session'
import { FakeStore } from '../fake-store'
import { box, CFG } from './policy'

const NIBBLES_DB8_1 = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2'

function zone(more: Partial<ZoneConfig> = {}): ZoneConfig {
  const p = (t: string) => parsePatterns(t) as ZoneConfig['trusted']
  return { name: 'dnswl', zone: 'list.dnswl.test', kind: 'ip', trusted: p('127.0.*.3'), green: p('127.0.*.1-2'), error: p('127.0.0.255'), timeoutMs: 200, ...more }
}

type Table = Record<string, RawReply | 'timeout' | 'hang'>
class TableDns implements DnsClient {
  readonly asked: string[] = []
  constructor(private table: Table) {}
  query(name: string, type: RrType): Promise<RawReply> {
    this.asked.push(`${type} ${name}`)
    const r = this.table[`${type} ${name}`]
    if (r === 'hang') return new Promise(() => undefined)
    if (r === 'timeout') return Promise.reject(new Error('timeout'))
    return Promise.resolve(r ?? { rcode: 3, answers: [], authorities: [] })
  }
}
const a = (ttl: number, ...addresses: string[]): RawReply => ({ rcode: 0, answers: addresses.map((address) => ({ type: 1, ttl, address })), authorities: [] })

describe('reputation: nibble names', () => {
  const rows: Array<[string, string | null]> = [
    ['2001:db8::1', NIBBLES_DB8_1],
    ['2001:0DB8:0000::0001', NIBBLES_DB8_1],
    ['[2001:db8::1]', NIBBLES_DB8_1],
    ['fe80::1%eth0', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f'],
    ['::ffff:192.0.2.1', '1.0.2.0.0.0.0.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0'],
    ['192.0.2.1', null],
    ['not an address', null],
  ]
  for (const [ip, want] of rows) it(`${ip} -> ${want ?? 'none'}`, () => assert.equal(nibbles(ip), want))

  it('an IPv6 zone name is the 32 nibbles under the zone; a domain zone prefixes the domain', () => {
    assert.equal(zoneName(zone(), '2001:db8::1'), `${NIBBLES_DB8_1}.list.dnswl.test`)
    assert.equal(zoneName(zone({ kind: 'domain', zone: 'dwl.test' }), 'Example.COM.'), 'example.com.dwl.test')
    assert.equal(zoneName(zone({ kind: 'domain', zone: 'dwl.test' }), 'no spaces.example'), null)
    assert.equal(zoneName(zone({ kind: 'domain', zone: 'dwl.test' }), `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.test`), null)
  })
})

describe('reputation: answer patterns and their mapping', () => {
  it('parses numbers, ranges and *; refuses what is not four octets within 0-255', () => {
    assert.deepEqual(parsePatterns('127.0.*.1-2'), [[[127, 127], [0, 0], [0, 255], [1, 2]]])
    assert.equal((parsePatterns('127.0.0.1, 127.0.0.2 127.0.0.3') as unknown[]).length, 3)
    for (const bad of ['127.0.1', '127.0.0.256', '127.0.0.3-1', '127.0.x.1', '127.0.0.1.5']) assert.equal(typeof parsePatterns(bad), 'string', bad)
  })

  const rows: Array<[string, string[], string]> = [
    ['trust 3', ['127.0.10.3'], 'trusted'],
    ['trust 2', ['127.0.15.2'], 'green'],
    ['trust 1', ['127.0.5.1'], 'green'],
    ['trust 0: listed, mapped to nothing', ['127.0.5.0'], 'listed'],
    ['several answers: the strongest', ['127.0.5.1', '127.0.6.3'], 'trusted'],
    ['an error answer beside a good one: absent', ['127.0.6.3', '127.0.0.255'], 'absent'],
    ['the error answer alone: absent', ['127.0.0.255'], 'absent'],
    ['an answer outside every pattern', ['10.0.0.1'], 'listed'],
  ]
  for (const [name, answers, want] of rows) it(`${name} -> ${want}`, () => assert.equal(mapAnswers(zone(), answers), want))
})

describe('reputation: lookups, failures and TTL caching', () => {
  const name = `${NIBBLES_DB8_1}.list.dnswl.test`
  const rows: Array<[string, Table[string], string]> = [
    ['listed trust 3', a(60, '127.0.10.3'), 'trusted'],
    ['NXDOMAIN', { rcode: 3, answers: [], authorities: [] }, 'unlisted'],
    ['NODATA', { rcode: 0, answers: [], authorities: [] }, 'unlisted'],
    ['SERVFAIL', { rcode: 2, answers: [], authorities: [] }, 'absent'],
    ['REFUSED', { rcode: 5, answers: [], authorities: [] }, 'absent'],
    ['no reply (the client gives up)', 'timeout', 'absent'],
    ['the provider refuses (127.0.0.255)', a(60, '127.0.0.255'), 'absent'],
  ]
  for (const [what, reply, want] of rows) {
    it(`${what} -> ${want}`, async () => {
      const r = await queryZone(zone(), '2001:db8::1', new CachingResolver(new TableDns({ [`A ${name}`]: reply }), { negativeTtl: 60, maxTtl: 3600 }))
      assert.equal(r.outcome, want)
      assert.equal(!!r.error, want === 'absent')
    })
  }

  it('a zone that does not answer is given up after its own timeout, not the resolver’s', async () => {
    const started = Date.now()
    const r = await queryZone(zone({ timeoutMs: 100 }), '2001:db8::1', new CachingResolver(new TableDns({ [`A ${name}`]: 'hang' }), { negativeTtl: 60, maxTtl: 3600 }))
    assert.equal(r.outcome, 'absent')
    assert.match(r.error ?? '', /no answer within 100 ms/)
    assert.ok(Date.now() - started < 5000, 'bounded by the zone timeout')
  })

  it('an answer is reused for its TTL, then asked again', async () => {
    let t = 1_000_000
    const dns = new TableDns({ [`A ${name}`]: a(30, '127.0.10.1') })
    const r = new CachingResolver(dns, { negativeTtl: 60, maxTtl: 3600, now: () => t })
    assert.equal(cachedZone(zone(), '2001:db8::1', r), undefined)
    assert.equal((await queryZone(zone(), '2001:db8::1', r)).outcome, 'green')
    assert.equal(cachedZone(zone(), '2001:db8::1', r)?.outcome, 'green')
    t += 29_000
    await queryZone(zone(), '2001:db8::1', r)
    assert.equal(dns.asked.length, 1, 'within the TTL: no second query')
    t += 2_000
    assert.equal(cachedZone(zone(), '2001:db8::1', r), undefined, 'expired')
    await queryZone(zone(), '2001:db8::1', r)
    assert.equal(dns.asked.length, 2)
  })

  it('failures are never cached', async () => {
    const dns = new TableDns({ [`A ${name}`]: { rcode: 2, answers: [], authorities: [] } })
    const r = new CachingResolver(dns, { negativeTtl: 60, maxTtl: 3600 })
    await queryZone(zone(), '2001:db8::1', r)
    await queryZone(zone(), '2001:db8::1', r)
    assert.equal(dns.asked.length, 2)
  })

  it('the peer signals carry every zone, and the same again from the cache alone', async () => {
    const other = zone({ name: 'other', zone: 'allow.other.test' })
    const dns = new TableDns({ [`A ${name}`]: a(60, '127.0.10.3') })
    const r = new CachingResolver(dns, { negativeTtl: 60, maxTtl: 3600 })
    const cfg = { fcrdns: false, asn: false, asnZone: 'x.test', zones: [zone(), other] }
    const live = await gatherPeerSignals('2001:db8::1', r, cfg)
    assert.deepEqual(live.providers?.map((p) => `${p.provider}:${p.outcome}`), ['dnswl:trusted', 'other:unlisted'])
    assert.deepEqual(cachedPeerSignals('2001:db8::1', r, cfg)?.providers, live.providers)
  })
})

describe('reputation: the trouble log', () => {
  it('logs a zone’s trouble once per interval, then with the count meanwhile', () => {
    let t = 0
    const lines: string[] = []
    const log = new ZoneTroubleLog((l) => lines.push(l), 60_000, () => t)
    const bad: ZoneResult = { provider: 'dnswl', zone: 'list.dnswl.test', subject: '2001:db8::1', outcome: 'absent', answers: [], error: 'A lookup rcode 2 (SERVFAIL)' }
    log.report(bad)
    log.report(bad)
    log.report({ ...bad, provider: 'other', zone: 'other.test' })
    log.report({ ...bad, outcome: 'unlisted' })
    assert.equal(lines.length, 2)
    assert.match(lines[0], /provider dnswl \(list\.dnswl\.test\): A lookup rcode 2 \(SERVFAIL\) for 2001:db8::1; counted as absent/)
    t = 61_000
    log.report(bad)
    assert.equal(lines.length, 3)
    assert.match(lines[2], /\(1 more since the last line\)/)
  })
})

describe('reputation: [provider:<name>] sections', () => {
  it('reads a zone with its mapping, in file order', () => {
    const { config, errors, unknown } = readReceiveConfig({
      'provider:dnswl': { zone: 'list.dnswl.test', kind: 'ip', trusted: '127.0.*.3', green: '127.0.*.1-2', error: '127.0.0.255', timeout: '500' },
      'provider:dwl': { zone: 'dwl.test', kind: 'domain', green: '127.0.2.*' },
    })
    assert.deepEqual(errors, [])
    assert.deepEqual(unknown, [])
    assert.deepEqual(
      config.providers.map((z) => [z.name, z.zone, z.kind, z.trusted.length, z.green.length, z.error.length, z.timeoutMs]),
      [
        ['dnswl', 'list.dnswl.test', 'ip', 1, 1, 1, 500],
        ['dwl', 'dwl.test', 'domain', 0, 1, 0, 1000],
      ],
    )
  })

  it('none by default', () => assert.deepEqual(readReceiveConfig({}).config.providers, []))

  const bad: Array<[string, Record<string, Record<string, string>>, RegExp]> = [
    ['a bad section name', { 'provider:Bad Name': { zone: 'z.test', trusted: '127.0.0.2' } }, /a provider section is \[provider:<name>\]/],
    ['no zone', { 'provider:x': { trusted: '127.0.0.2' } }, /no zone=; provider x not queried/],
    ['a pattern that does not parse', { 'provider:x': { zone: 'z.test', trusted: '127.0.0.300' } }, /trusted=127\.0\.0\.300: .*provider x not queried/],
    ['no answer mapped', { 'provider:x': { zone: 'z.test', error: '127.0.0.255' } }, /neither trusted= nor green= maps an answer/],
    ['a bad kind', { 'provider:x': { zone: 'z.test', kind: 'asn', green: '127.0.0.2' } }, /kind=asn: expected one of ip, domain/],
  ]
  for (const [what, ini, want] of bad) {
    it(`${what}: an error line`, () => {
      const { config, errors } = readReceiveConfig(ini)
      assert.match(errors.join('\n'), want)
      if (!/kind=/.test(String(want))) assert.deepEqual(config.providers, [])
    })
  }

  it('an unknown key in a provider section is reported', () => {
    const { unknown } = readReceiveConfig({ 'provider:x': { zone: 'z.test', green: '127.0.0.2', timout: '5' } })
    assert.match(unknown.join('\n'), /\[provider:x\] timout: unknown key.*timeout/)
  })
})

describe('reputation: what the answers decide', () => {
  const trusted: ZoneResult = { provider: 'dnswl', zone: 'list.dnswl.test', subject: '2001:db8:7::10', outcome: 'trusted', answers: ['127.0.10.3'] }
  const green: ZoneResult = { ...trusted, outcome: 'green', answers: ['127.0.10.1'] }
  const signals = (p: ZoneResult[]): PeerSignals => ({ fcrdns: { outcome: 'skip', confirmed: [], detail: '' }, asn: { outcome: 'skip', asns: [], detail: '' }, providers: p })
  const facts = (spf: RcptFacts['spf'], p: ZoneResult[]): RcptFacts => ({ ipv6: '2001:db8:7::10', mx6: false, now: 1_800_000_000, spf, mailFrom: box('a@sender.test'), rcpt: box('bob@rcpt.test'), peerSignals: signals(p) })
  const answers = { ipAllow: null, domainAllow: null, ipGreen: null }
  const DEFER = { ...CFG, undecided: 'defer' as const }

  it('a trusted answer: trusted at RCPT, naming provider, zone and answer', () => {
    const d = decideRcpt(facts({ result: 'none', domain: 'sender.test' }, [trusted]), answers, DEFER)
    assert.equal(d.verdict, 'trusted')
    assert.equal(d.rule, 'dnswl')
    assert.equal(d.entry, 'dnswl')
    assert.match(d.reason, /listed by provider dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted/)
    assert.equal(counterName('rcpt', d), 'rcpt.trusted.dnswl:dnswl')
  })

  it('a green answer: green', () => assert.equal(decideRcpt(facts(null, [green]), answers, DEFER).verdict, 'green'))

  it('failed SPF vetoes a provider, trusted or green (an automatic signal)', () => {
    for (const z of [trusted, green]) {
      const d = decideRcpt(facts({ result: 'fail', domain: 'sender.test' }, [z]), answers, DEFER)
      assert.equal(d.verdict, 'defer')
      assert.equal(d.rule, 'auth-fail')
      assert.match(d.reason, /dnswl does not count with failed authentication/)
    }
  })

  it('absent, unlisted and listed-as-nothing answers accept nothing', () => {
    for (const outcome of ['absent', 'unlisted', 'listed'] as const) {
      assert.equal(decideRcpt(facts(null, [{ ...trusted, outcome }]), answers, DEFER).verdict, 'defer', outcome)
    }
    assert.equal(bestZone([{ ...trusted, outcome: 'listed' }]), null)
  })

  it('a domain zone counts for an authenticated From only, after DATA', () => {
    const dwl: ZoneResult = { provider: 'dwl', zone: 'dwl.test', subject: 'sender.test', outcome: 'trusted', answers: ['127.0.2.3'] }
    const base: DataFacts = {
      spf: { result: 'pass', domain: 'sender.test' },
      dkimPass: [],
      dkimFail: [],
      from: { mailbox: box('a@sender.test') },
      mx6: false,
      peerGreen: null,
      now: 1_800_000_000,
      recipients: [{ rcpt: box('bob@rcpt.test'), prior: { verdict: 'pending', rule: 'none', final: false, reason: '' } }],
      aligned: ['sender.test'],
      domainZones: [dwl],
    }
    const d = decideData(base, { domainAllow: null, domainGreen: null }, CFG).message
    assert.equal(`${d.verdict} ${d.rule}`, 'trusted dwl')
    assert.match(d.reason, /sender\.test listed by provider dwl dwl\.test 127\.0\.2\.3 -> trusted/)
    const unauth = decideData({ ...base, aligned: [] }, { domainAllow: null, domainGreen: null }, CFG).message
    assert.equal(unauth.verdict, 'defer')
  })

  it('with undecided=defer a domain zone decides at RCPT, with no peer DNS signal enabled at all', async () => {
    const cfg = readReceiveConfig({ main: { undecided: 'defer' }, green: { host_green: 'false' }, 'provider:dwl': { zone: 'dwl.test', kind: 'domain', trusted: '127.0.2.3' } }).config
    const asked: string[][] = []
    const session = new Session(cfg, {
      store: new FakeStore(),
      peerSignals: async () => undefined,
      evaluateGuess: async () => 'none',
      now: () => 1_800_000_000,
      domainZones: async (domains) => (asked.push([...domains]), domains.map((d) => ({ provider: 'dwl', zone: 'dwl.test', subject: d, outcome: 'trusted' as const, answers: ['127.0.2.3'] }))),
    }, { peer: { ip: '2001:db8:7::10', private: false, relaying: false, authenticated: false }, mx6: false, helo: 'x.test', spf: { result: 'pass', domain: 'sender.test' }, mailFrom: box('a@sender.test') })
    const o = await session.rcpt({}, 'bob@rcpt.test', box('bob@rcpt.test'))
    assert.deepEqual(asked, [['sender.test']])
    assert.deepEqual([o.decision.verdict, o.decision.rule, o.decision.final], ['trusted', 'dwl', false])
  })

  it('mx6ctl stats counts the decisions per provider', () => {
    assert.deepEqual(providerCounts({ 'rcpt.trusted.dnswl:dnswl': 3, 'data_post.green.dnswl:dnswl': 2, 'data_post.trusted.dwl:dwl': 1, 'data_post.defer.none': 9 }), {
      dnswl: { trusted: 3, green: 2 },
      dwl: { trusted: 1 },
    })
  })
})
