// mx6-send's pure parts: SRV ordering, the MX list per DNS situation, reply classification.
import assert from 'node:assert/strict'
import { isFallbackReply } from '../../plugins/mx6-send/classify'
import { buildPlan, type Lookup, type MxRecord, type PlanInput } from '../../plugins/mx6-send/plan'
import { isServiceUnavailable, orderSrv, seededRng, type SrvRecord } from '../../plugins/mx6-send/srv'

const srv = (priority: number, weight: number, target: string, port = 25): SrvRecord => ({ priority, weight, port, target })

describe('mx6-send: SRV ordering (RFC 2782)', () => {
  it('orders by ascending priority', () => {
    const got = orderSrv([srv(20, 0, 'c'), srv(10, 5, 'a'), srv(30, 0, 'd'), srv(10, 5, 'b')], seededRng(1)).map((r) => r.priority)
    assert.deepEqual(got, [10, 10, 20, 30])
  })
  it('picks first within a priority in proportion to weight (fixed seed, 20,000 draws)', () => {
    const rng = seededRng(42)
    const records = [srv(0, 60, 'a'), srv(0, 30, 'b'), srv(0, 10, 'c')]
    const first: Record<string, number> = { a: 0, b: 0, c: 0 }
    const n = 20000
    for (let i = 0; i < n; i++) first[orderSrv(records, rng)[0].target]++
    // Expected shares 60/30/10 % (the +1 of RFC 2782's inclusive draw shifts them by < 1 %).
    assert.ok(Math.abs(first.a / n - 0.6) < 0.02, JSON.stringify(first))
    assert.ok(Math.abs(first.b / n - 0.3) < 0.02, JSON.stringify(first))
    assert.ok(Math.abs(first.c / n - 0.1) < 0.02, JSON.stringify(first))
  })
  it('gives weight-0 records a small chance when others have weight, and every record a place', () => {
    const rng = seededRng(7)
    let zeroFirst = 0
    for (let i = 0; i < 5000; i++) {
      const o = orderSrv([srv(0, 100, 'heavy'), srv(0, 0, 'zero')], rng)
      assert.deepEqual(o.map((r) => r.target).sort(), ['heavy', 'zero'])
      if (o[0].target === 'zero') zeroFirst++
    }
    assert.ok(zeroFirst > 0 && zeroFirst < 5000 * 0.03, `zero first ${zeroFirst} times`)
  })
  it('is reproducible with the same seed', () => {
    const recs = [srv(0, 1, 'a'), srv(0, 1, 'b'), srv(0, 1, 'c'), srv(0, 1, 'd')]
    assert.deepEqual(orderSrv(recs, seededRng(9)), orderSrv(recs, seededRng(9)))
  })
  it('recognises the "." target as "service not available"', () => {
    assert.equal(isServiceUnavailable([srv(0, 0, '.')]), true)
    assert.equal(isServiceUnavailable([srv(0, 0, '')]), true)
    assert.equal(isServiceUnavailable([srv(0, 0, 'mx6.example')]), false)
    assert.deepEqual(orderSrv([srv(0, 0, '.'), srv(1, 0, 'x')]).map((r) => r.target), ['x'])
  })
})

const ok = <T>(...v: T[]): Lookup<T> => ({ ok: v })
const nodata: Lookup<never> = { none: 'nodata' }
const nxdomain: Lookup<never> = { none: 'nxdomain' }
const fail = (e = 'SERVFAIL'): Lookup<never> => ({ error: e })
const mxr = (priority: number, exchange: string): MxRecord => ({ priority, exchange })

function input(over: Partial<PlanInput>): PlanInput {
  return { domain: 'example.test', v4only: false, srv: nodata, aaaa: new Map(), mx: ok(mxr(10, 'mx.example.test')), a: new Map([['mx.example.test', ok('198.51.100.1')]]), ...over }
}
const CFG = { allowSrvPort: false, ipv6PlainMx: false }
const list = (p: ReturnType<typeof buildPlan>) => ('deliver' in p ? p.deliver.map((e) => `${e.mx6 ? '6' : '4'}:${e.exchange}:${e.port}`) : 'defer' in p ? `defer: ${p.defer}` : `bounce${p.nullMx ? ' (null MX)' : ''}: ${p.bounce}`)

describe('mx6-send: the MX list for each DNS situation', () => {
  const rows: Array<[string, Partial<PlanInput>, Partial<typeof CFG>, string | string[]]> = [
    ['no SRV (NODATA): regular MX over IPv4 only, even with AAAA', { aaaa: new Map([['mx.example.test', ok('2001:db8::1')]]) }, {}, ['4:198.51.100.1:25']],
    ['no SRV (NXDOMAIN)', { srv: nxdomain }, {}, ['4:198.51.100.1:25']],
    ['no SRV, ipv6_plain_mx: AAAA first, then A', { aaaa: new Map([['mx.example.test', ok('2001:db8::1')]]) }, { ipv6PlainMx: true }, ['4:2001:db8::1:25', '4:198.51.100.1:25']],
    ['SRV: MX6 hosts over IPv6 first, then the regular MX over IPv4', { srv: ok(srv(0, 0, 'mx6.example.test')), aaaa: new Map([['mx6.example.test', ok('2001:db8::6', '2001:db8::7')]]) }, {}, ['6:2001:db8::6:25', '6:2001:db8::7:25', '4:198.51.100.1:25']],
    ['SRV "." target: no MX6', { srv: ok(srv(0, 0, '.')) }, {}, ['4:198.51.100.1:25']],
    ['SRV lookup failed: deferred, never silently plain MX', { srv: fail() }, {}, 'defer: SRV _mx6._tcp.example.test lookup failed: SERVFAIL'],
    ['SRV lookup timed out: deferred', { srv: fail('timeout') }, {}, 'defer: SRV _mx6._tcp.example.test lookup failed: timeout'],
    ['SRV target without AAAA: skipped', { srv: ok(srv(0, 0, 'mx6.example.test')), aaaa: new Map([['mx6.example.test', nodata]]) }, {}, ['4:198.51.100.1:25']],
    ['SRV port 587 ignored by default', { srv: ok(srv(0, 0, 'mx6.example.test', 587)), aaaa: new Map([['mx6.example.test', ok('2001:db8::6')]]) }, {}, ['6:2001:db8::6:25', '4:198.51.100.1:25']],
    ['SRV port 587 used with allow_srv_port', { srv: ok(srv(0, 0, 'mx6.example.test', 587)), aaaa: new Map([['mx6.example.test', ok('2001:db8::6')]]) }, { allowSrvPort: true }, ['6:2001:db8::6:587', '4:198.51.100.1:25']],
    ['null MX: bounced through Haraka\'s null MX handling', { mx: ok(mxr(0, '')) }, {}, 'bounce (null MX): Domain example.test sends and receives no email (NULL MX)'],
    ['null MX wins over an MX6 SRV', { mx: ok(mxr(0, '.')), srv: ok(srv(0, 0, 'mx6.example.test')), aaaa: new Map([['mx6.example.test', ok('2001:db8::6')]]) }, {}, 'bounce (null MX): Domain example.test sends and receives no email (NULL MX)'],
    ['no MX records: the domain itself (implicit MX)', { mx: nodata, a: new Map([['example.test', ok('198.51.100.9')]]) }, {}, ['4:198.51.100.9:25']],
    ['NXDOMAIN and no SRV: bounced', { mx: nxdomain, srv: nxdomain }, {}, 'bounce: No such domain: example.test'],
    ['MX lookup failed, no SRV: deferred', { mx: fail() }, {}, 'defer: MX lookup for example.test failed: SERVFAIL'],
    ['MX lookup failed, SRV present: MX6 hosts only for now', { mx: fail(), srv: ok(srv(0, 0, 'mx6.example.test')), aaaa: new Map([['mx6.example.test', ok('2001:db8::6')]]) }, {}, ['6:2001:db8::6:25']],
    ['MX hosts without A: deferred (IPv4-only policy)', { a: new Map([['mx.example.test', nodata]]) }, {}, 'defer: no usable address for example.test (MX6 hosts need AAAA, MX hosts need A)'],
    ['MX in priority order, duplicates once', { mx: ok(mxr(20, 'b.example.test'), mxr(10, 'a.example.test')), a: new Map([['a.example.test', ok('198.51.100.1')], ['b.example.test', ok('198.51.100.2', '198.51.100.1')]]) }, {}, ['4:198.51.100.1:25', '4:198.51.100.2:25']],
    ['after a fallback: IPv4 only, the SRV is not used', { v4only: true, srv: undefined }, { ipv6PlainMx: true }, ['4:198.51.100.1:25']],
  ]
  for (const [name, over, cfg, want] of rows) {
    it(name, () => assert.deepEqual(list(buildPlan(input(over), { ...CFG, ...cfg }, seededRng(1))), want))
  }
  it('explains each choice in notes', () => {
    const p = buildPlan(input({ srv: ok(srv(0, 0, 'mx6.example.test', 2525)), aaaa: new Map([['mx6.example.test', ok('2001:db8::6')]]) }), CFG)
    assert.ok(p.notes.some((n) => /port 2525: ignored, using 25/.test(n)), p.notes.join('\n'))
  })
})

describe('mx6-send: reply classification', () => {
  const c = { code: 550, status: '5.5.7', draft456: true }
  const rows: Array<[string | number, string | undefined, boolean]> = [
    ['550', '5.5.7', true],
    [550, '5.5.7', true],
    ['550', '5.7.1', false],
    ['550', undefined, false],
    ['554', '5.5.7', false],
    ['456', undefined, true],
    ['456', '4.5.7', true],
    ['451', '4.7.26', false],
  ]
  for (const [code, status, want] of rows) {
    it(`${code} ${status ?? '(no status)'} -> ${want ? 'fallback' : 'not fallback'}`, () => assert.equal(isFallbackReply(code, status, c), want))
  }
  it('456 can be switched off', () => assert.equal(isFallbackReply('456', undefined, { ...c, draft456: false }), false))
  it('a configured 4xx pair is recognised', () => assert.equal(isFallbackReply('451', '4.5.7', { code: 451, status: '4.5.7', draft456: false }), true))
})
