// mx6ctl dns: the check's findings from table-driven DNS answers, and the records it prints.
import assert from 'node:assert/strict'
import { CachingResolver, type RawReply } from '../../plugins/lib/dns'
import { TableClient, type Zone } from '../support/table-dns'
import { main } from '../../scripts/mx6ctl'
import { findProblems, gatherDnsFacts, okLine, summaryLines, type DnsFacts } from '../../scripts/ctl/dns-check'
import { zoneLines } from '../../scripts/ctl/dns-cmd'

const ok = (answers: Array<Record<string, unknown>>): RawReply => ({ rcode: 0, answers: answers.map((a) => ({ ttl: 60, ...a }) as RawReply['answers'][number]), authorities: [] })
const srv = (target: string, port = 25, priority = 0, weight = 0) => ({ type: 33, priority, weight, port, target })
const mx = (exchange: string, priority: number) => ({ type: 15, priority, exchange })
const a = (address: string) => ({ type: 1, address })
const aaaa = (address: string) => ({ type: 28, address })

/** A clean MX6 set-up for x.test, to be varied per test. */
function cleanZone(): Zone {
  return {
    'SRV _mx6._tcp.x.test': ok([srv('mx6.x.test')]),
    'MX x.test': ok([mx('mx.x.test', 10)]),
    'A mx.x.test': ok([a('198.51.100.1')]),
    'AAAA mx6.x.test': ok([aaaa('2001:db8::6')]),
    'A mx6.x.test': ok([a('198.51.100.1')]),
  }
}

async function facts(zone: Zone, domain = 'x.test'): Promise<DnsFacts> {
  return gatherDnsFacts(domain, new CachingResolver(new TableClient(zone), { negativeTtl: 60, maxTtl: 3600 }))
}

const codes = (f: DnsFacts) => findProblems(f).map((p) => p.code)

describe('mx6ctl dns check: findings', () => {
  it('a clean set-up: no problem, a summary and an OK line', async () => {
    const f = await facts(cleanZone())
    assert.deepEqual(findProblems(f), [])
    assert.deepEqual(summaryLines(f), ['SRV _mx6._tcp.x.test: 0 0 25 mx6.x.test: AAAA 2001:db8::6; A 198.51.100.1', 'MX x.test: 10 mx.x.test: A 198.51.100.1; AAAA none'])
    assert.equal(okLine(f), 'OK: x.test publishes MX6: MX6-aware senders deliver over IPv6 to [2001:db8::6]:25, the others over IPv4 to mx.x.test')
  })

  it('no SRV (NXDOMAIN or NODATA): MX6 not published, with a hint', async () => {
    const z = cleanZone()
    delete z['SRV _mx6._tcp.x.test']
    const p = findProblems(await facts(z))
    assert.deepEqual(p.map((x) => x.code), ['no-srv'])
    assert.match(p[0].message, /\(NXDOMAIN\): MX6 is not published/)
    assert.match(p[0].hint ?? '', /_mx6\._tcp\.x\.test\. SRV 0 0 25 mx6\.x\.test\./)
    z['SRV _mx6._tcp.x.test'] = ok([])
    assert.match(findProblems(await facts(z))[0].message, /\(NODATA\)/)
  })

  it('SRV target ".", alone or among others', async () => {
    const z = cleanZone()
    z['SRV _mx6._tcp.x.test'] = ok([srv('', 0)])
    const alone = findProblems(await facts(z))
    assert.deepEqual(alone.map((x) => x.code), ['srv-dot'])
    assert.match(alone[0].message, /service decidedly not available/)
    z['SRV _mx6._tcp.x.test'] = ok([srv('', 0), srv('mx6.x.test')])
    assert.match(findProblems(await facts(z))[0].message, /among others: senders ignore it/)
  })

  it('SRV target without AAAA, and a port other than 25', async () => {
    const z = cleanZone()
    delete z['AAAA mx6.x.test']
    assert.deepEqual(codes(await facts(z)), ['srv-no-aaaa'])
    const z2 = cleanZone()
    z2['SRV _mx6._tcp.x.test'] = ok([srv('mx6.x.test', 2525)])
    const p = findProblems(await facts(z2))
    assert.deepEqual(p.map((x) => x.code), ['srv-port'])
    assert.match(p[0].message, /SRV port 2525, not 25/)
  })

  it('a target that does not exist at all says NXDOMAIN', async () => {
    const z = cleanZone()
    z['SRV _mx6._tcp.x.test'] = ok([srv('gone.x.test')])
    const p = findProblems(await facts(z))
    assert.deepEqual(p.map((x) => x.code), ['srv-no-aaaa'])
    assert.match(p[0].message, /gone\.x\.test has no AAAA record \(NXDOMAIN\)/)
  })

  it('the MX6 address is also a regular MX address (compared in canonical form)', async () => {
    const z = cleanZone()
    z['AAAA mx.x.test'] = ok([aaaa('2001:DB8:0::6')])
    const p = findProblems(await facts(z))
    assert.deepEqual(p.map((x) => x.code), ['mx6-on-mx'])
    assert.match(p[0].message, /^MX6 address 2001:db8::6 of mx6\.x\.test is also an IPv6 address of the regular MX host mx\.x\.test/)
  })

  it('null MX and a domain that does not exist', async () => {
    const z = cleanZone()
    z['MX x.test'] = ok([mx('', 0)])
    assert.deepEqual(codes(await facts(z)), ['null-mx'])
    const gone = await facts({}, 'gone.test')
    assert.deepEqual(codes(gone), ['no-srv', 'no-domain'])
  })

  it('no regular MX host with an A record; implicit MX (no MX records) uses the domain', async () => {
    const z = cleanZone()
    delete z['A mx.x.test']
    z['AAAA mx.x.test'] = ok([aaaa('2001:db8::25')])
    const p = findProblems(await facts(z))
    assert.deepEqual(p.map((x) => x.code), ['mx-no-ipv4'])
    assert.match(p[0].message, /\(mx\.x\.test: AAAA only\)/)
    // No MX: the domain's own A is the implicit MX, which is fine...
    const imp = cleanZone()
    imp['MX x.test'] = ok([])
    imp['A x.test'] = ok([a('198.51.100.9')])
    const fi = await facts(imp)
    assert.deepEqual(findProblems(fi), [])
    assert.equal(summaryLines(fi)[1], 'MX x.test: none (NODATA), the domain itself is the implicit MX')
    // ...unless it has no A either.
    delete imp['A x.test']
    assert.deepEqual(codes(await facts(imp)), ['mx-no-ipv4'])
  })

  it('IPv6-only MX addresses ahead of the first IPv4 MX: one is fine, two are not (Postfix smtp_mx_session_limit=2)', async () => {
    const z = cleanZone()
    z['MX x.test'] = ok([mx('mx.x.test', 30), mx('a6.x.test', 10)])
    z['AAAA a6.x.test'] = ok([aaaa('2001:db8::a6')])
    assert.deepEqual(findProblems(await facts(z)), [])
    // A second address of the same host is a second session.
    z['AAAA a6.x.test'] = ok([aaaa('2001:db8::a6'), aaaa('2001:db8::a7')])
    assert.deepEqual(codes(await facts(z)), ['v6-before-v4'])
    // Two hosts; an equal preference with the IPv4 host counts (random order).
    z['AAAA a6.x.test'] = ok([aaaa('2001:db8::a6')])
    z['MX x.test'] = ok([mx('mx.x.test', 30), mx('a6.x.test', 10), mx('b6.x.test', 30)])
    z['AAAA b6.x.test'] = ok([aaaa('2001:db8::b6')])
    const p = findProblems(await facts(z))
    assert.deepEqual(p.map((x) => x.code), ['v6-before-v4'])
    assert.match(p[0].message, /^2 IPv6-only MX addresses \(a6\.x\.test \(10\), b6\.x\.test \(30\)\) come before the first IPv4 MX host mx\.x\.test \(30\)/)
    // Behind the IPv4 host they do not matter.
    z['MX x.test'] = ok([mx('mx.x.test', 5), mx('a6.x.test', 10), mx('b6.x.test', 30)])
    assert.deepEqual(findProblems(await facts(z)), [])
  })

  it('DNS errors: one error line per failed query, printable, and no verdict built on missing answers', async () => {
    const z = cleanZone()
    z['SRV _mx6._tcp.x.test'] = { rcode: 2, answers: [], authorities: [] }
    z['MX x.test'] = new Error('SRV lookup of x failed on all 1 name server(s) \u2014 192.0.2.53: DNS query timed out after 300ms')
    const p = findProblems(await facts(z))
    assert.deepEqual(p.map((x) => x.code), ['dns-error', 'dns-error'])
    assert.equal(p[0].message, 'DNS lookup SRV _mx6._tcp.x.test failed: SRV lookup rcode 2 (SERVFAIL); the check is incomplete')
    assert.equal(p[1].message, 'DNS lookup MX x.test failed: SRV lookup of x failed on all 1 name server(s): 192.0.2.53: DNS query timed out after 300ms; the check is incomplete')
    const partly = cleanZone()
    partly['A mx.x.test'] = { rcode: 2, answers: [], authorities: [] }
    assert.deepEqual(codes(await facts(partly)), ['dns-error'], 'an A lookup error is not "no A record"')
  })
})

describe('mx6ctl dns records', () => {
  const io = () => {
    const out: string[] = []
    const err: string[] = []
    return { out, err, io: { out: (t: string) => void out.push(...t.replace(/\n$/, '').split('\n')), err: (t: string) => void err.push(t) } }
  }

  it('prints the README layout, canonical, with absolute names', () => {
    const lines = zoneLines({ domain: 'example.com', mx6Host: 'mx6.example.com', ipv6: '2001:db8:25::6', ipv4: '198.51.100.25', mxHost: 'mx.example.com' })
    const recs = lines.filter((l) => !l.startsWith(';')).map((l) => l.split(/\s+/).join(' '))
    assert.deepEqual(recs, [
      'example.com. MX 10 mx.example.com.',
      'mx.example.com. A 198.51.100.25',
      '_mx6._tcp.example.com. SRV 0 0 25 mx6.example.com.',
      'mx6.example.com. AAAA 2001:db8:25::6',
      'mx6.example.com. A 198.51.100.25',
    ])
    assert.ok(lines.includes(';   listeners=2001:db8:25::6'))
  })

  it('normalises its arguments (case, U-labels, IPv6 text) and defaults the MX host', async () => {
    const c = io()
    const code = await main(['dns', 'records', '--domain', 'Bücher.Example', '--mx6-host', 'MX6.bücher.example.', '--ipv6', '2001:DB8:0:0::6', '--ttl', '300'], c.io)
    assert.equal(code, 0, c.err.join('\n'))
    const recs = c.out.filter((l) => !l.startsWith(';')).map((l) => l.split(/\s+/).join(' '))
    assert.deepEqual(recs, [
      'xn--bcher-kva.example. 300 MX 10 mx.xn--bcher-kva.example.',
      '_mx6._tcp.xn--bcher-kva.example. 300 SRV 0 0 25 mx6.xn--bcher-kva.example.',
      'mx6.xn--bcher-kva.example. 300 AAAA 2001:db8::6',
    ])
    assert.ok(c.out.some((l) => l.startsWith('; mx.xn--bcher-kva.example. needs an A record')))
  })

  const bad: Array<[string, string[]]> = [
    ['no subcommand', ['dns']],
    ['unknown subcommand', ['dns', 'frob']],
    ['missing --ipv6', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test']],
    ['missing --domain', ['dns', 'records', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6']],
    ['bad domain', ['dns', 'records', '--domain', 'not a domain', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6']],
    ['single-label host', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'localhost', '--ipv6', '2001:db8::6']],
    ['IPv4 as --ipv6', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '192.0.2.1']],
    ['IPv4-mapped as --ipv6', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '::ffff:192.0.2.1']],
    ['prefix as --ipv6', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::/64']],
    ['loopback --ipv6', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '::1']],
    ['link-local --ipv6', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', 'fe80::1']],
    ['zone id', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', 'fe80::1%eth0']],
    ['bad --ipv4', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6', '--ipv4', '198.51.100']],
    ['IPv6 as --ipv4', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6', '--ipv4', '2001:db8::7']],
    ['loopback --ipv4', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6', '--ipv4', '127.0.0.1']],
    ['same MX and MX6 host', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx.x.test', '--ipv6', '2001:db8::6']],
    ['bad ttl', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6', '--ttl', '-1']],
    ['huge ttl', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6', '--ttl', '99999999999']],
    ['unknown option', ['dns', 'records', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6', '--frob']],
    ['stray argument', ['dns', 'records', 'x.test', '--domain', 'x.test', '--mx6-host', 'mx6.x.test', '--ipv6', '2001:db8::6']],
    ['check without domain', ['dns', 'check']],
    ['check with two domains', ['dns', 'check', 'a.test', 'b.test']],
    ['check bad domain', ['dns', 'check', 'a\u0000.test']],
    ['check bad server', ['dns', 'check', 'a.test', '--server', 'ns.example']],
    ['check bad timeout', ['dns', 'check', 'a.test', '--timeout', '5']],
  ]
  for (const [what, argv] of bad) {
    it(`usage error (exit 2): ${what}`, async () => {
      const c = io()
      assert.equal(await main(argv, c.io), 2)
      assert.deepEqual(c.out, [])
      assert.equal(c.err.length, 1, c.err.join('\n'))
      assert.match(c.err[0], /^mx6ctl dns: [^\n]*; see `mx6ctl dns --help`$/)
    })
  }
})
