// mx6ctl dns check against real zones (the test bed's dnsmasq, section "mx6ctl dns check
// tests" of test/fixtures/dns/dnsmasq.conf), and dns records round-tripping through them.
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { main } from '../../scripts/mx6ctl'
import { requireTestbed } from '../support/net'

interface Run {
  code: number
  out: string[]
  err: string[]
}

async function ctl(...args: string[]): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const split = (t: string) => t.replace(/\n$/, '').split('\n')
  const code = await main(args, { out: (t) => void out.push(...split(t)), err: (t) => void err.push(...split(t)) })
  return { code, out, err }
}

/** The problem and error lines of a check, in order. */
const problems = (r: Run): string[] => r.out.filter((l) => /^(problem|error): /.test(l))

/** A name server on <address>:53 that answers SERVFAIL to everything, or nothing at all. */
class BadDns {
  queries = 0
  private constructor(private readonly sock: dgram.Socket) {}
  static start(address: string, mode: 'servfail' | 'drop'): Promise<BadDns> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket('udp4')
      const dns = new BadDns(sock)
      sock.on('message', (msg, rinfo) => {
        dns.queries++
        if (mode === 'drop' || msg.length < 12) return
        // Same id and question; QR=1, RA=1, RCODE=2 (SERVFAIL), no answers.
        const reply = Buffer.from(msg)
        reply[2] = (reply[2] | 0x80) & 0xfb
        reply[3] = 0x80 | 2
        reply.writeUInt16BE(0, 6)
        reply.writeUInt16BE(0, 8)
        reply.writeUInt16BE(0, 10)
        const qend = questionEnd(reply)
        sock.send(qend > 0 ? reply.subarray(0, qend) : reply, rinfo.port, rinfo.address)
      })
      sock.once('error', reject)
      sock.bind(53, address, () => resolve(dns))
    })
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()))
  }
}

/** Offset just after the first question (name, type, class), or -1. */
function questionEnd(b: Buffer): number {
  let i = 12
  while (i < b.length && b[i] !== 0) i += b[i] + 1
  return i + 5 <= b.length ? i + 5 : -1
}

describe('e2e: mx6ctl dns check against the test zones', function () {
  this.timeout(30000)
  before(() => void requireTestbed())

  it('a clean zone: summary of what was found, no problem, exit 0', async () => {
    const r = await ctl('dns', 'check', 'dnsok.test')
    assert.equal(r.code, 0, r.out.join('\n'))
    assert.deepEqual(r.out, [
      'MX6 check of dnsok.test (name servers 127.0.0.53)',
      '  SRV _mx6._tcp.dnsok.test: 0 0 25 mx6.dnsok.test: AAAA 2001:db8:53::6; A 198.51.100.53',
      '  MX dnsok.test: 10 mx.dnsok.test: A 198.51.100.53; AAAA none',
      'OK: dnsok.test publishes MX6: MX6-aware senders deliver over IPv6 to [2001:db8:53::6]:25, the others over IPv4 to mx.dnsok.test',
    ])
    assert.deepEqual(r.err, [])
  })

  it('the same with --server and --json', async () => {
    const r = await ctl('dns', 'check', 'DNSOK.test.', '--server', '127.0.0.53', '--json')
    assert.equal(r.code, 0)
    const j = JSON.parse(r.out.join('\n'))
    assert.equal(j.domain, 'dnsok.test')
    assert.equal(j.ok, true)
    assert.deepEqual(j.problems, [])
    assert.deepEqual(j.servers, ['127.0.0.53'])
    assert.deepEqual(j.srv.records.map((x: { target: string; port: number }) => [x.target, x.port]), [['mx6.dnsok.test', 25]])
  })

  const cases: Array<[string, string[]]> = [
    [
      'dnsnosrv.test',
      [
        'problem: no _mx6._tcp.dnsnosrv.test SRV record (NXDOMAIN): MX6 is not published, MX6-aware senders deliver to the regular MX over IPv4 only',
      ],
    ],
    ['dnsdot.test', ['problem: _mx6._tcp.dnsdot.test SRV target "." (RFC 2782: service decidedly not available): MX6-aware senders deliver to the regular MX over IPv4 only']],
    ['dnsnoaaaa.test', ['problem: MX6 host mx6.dnsnoaaaa.test has no AAAA record (NODATA): MX6-aware senders connect to MX6 hosts over IPv6 only, so they cannot use it']],
    ['dnsport.test', ['problem: MX6 host mx6.dnsport.test: SRV port 2525, not 25: outbound port-25 rules do not cover it (mx6-send connects to port 25 anyway unless allow_srv_port=true)']],
    [
      'dnsv6only.test',
      ['problem: no regular MX host of dnsv6only.test has an A record (mx.dnsv6only.test: AAAA only): senders without IPv6, and MX6 fallbacks to IPv4, cannot deliver'],
    ],
    [
      'dnstwov6.test',
      [
        'problem: 2 IPv6-only MX addresses (a6.dnstwov6.test (10), b6.dnstwov6.test (20)) come before the first IPv4 MX host v4.dnstwov6.test (30): Postfix makes at most 2 SMTP sessions per delivery (smtp_mx_session_limit), so mail deferred over IPv6 never reaches the IPv4 MX',
      ],
    ],
    [
      'dnssame.test',
      ['problem: MX6 address 2001:db8:53::10 of mx6.dnssame.test is also an IPv6 address of the regular MX host mx.dnssame.test: senders that ignore MX6 reach it too and get the hard 550 fallback reply there'],
    ],
    ['dnsnull.test', ['problem: dnsnull.test publishes a null MX (RFC 7505): it accepts no mail at all, and senders (mx6-send too) bounce at once whatever _mx6._tcp.dnsnull.test says']],
  ]
  for (const [domain, expected] of cases) {
    it(`${domain}: ${expected.length} problem line(s), exit 1`, async () => {
      const r = await ctl('dns', 'check', domain)
      assert.deepEqual(problems(r), expected, r.out.join('\n'))
      assert.equal(r.code, 1)
      assert.equal(r.out.at(-1), `${expected.length} problem${expected.length > 1 ? 's' : ''} found for ${domain}`)
      const j = JSON.parse((await ctl('dns', 'check', domain, '--json')).out.join('\n'))
      assert.deepEqual(
        j.problems.map((p: { code: string; message: string }) => `${p.code === 'dns-error' ? 'error' : 'problem'}: ${p.message}`),
        expected,
      )
    })
  }

  it('MX6 not published comes with a hint pointing at dns records', async () => {
    const r = await ctl('dns', 'check', 'dnsnosrv.test')
    assert.ok(r.out.includes('  hint: publish "_mx6._tcp.dnsnosrv.test. SRV 0 0 25 mx6.dnsnosrv.test." and an AAAA record for mx6.dnsnosrv.test (mx6ctl dns records prints the lines)'), r.out.join('\n'))
    assert.ok(r.out.includes('  MX dnsnosrv.test: 10 mx.dnsnosrv.test: A 198.51.100.54; AAAA none'))
  })

  it('the summary shows every MX host with its addresses, in preference order', async () => {
    const r = await ctl('dns', 'check', 'dnstwov6.test')
    assert.deepEqual(
      r.out.filter((l) => l.startsWith('  MX ')),
      [
        '  MX dnstwov6.test: 10 a6.dnstwov6.test: A none; AAAA 2001:db8:53::1a',
        '  MX dnstwov6.test: 20 b6.dnstwov6.test: A none; AAAA 2001:db8:53::1b',
        '  MX dnstwov6.test: 30 v4.dnstwov6.test: A 198.51.100.58; AAAA none',
      ],
    )
  })

  it('an existing domain publishing MX6 for another (rcpt.test fixtures): regular IPv6 MX ahead of the IPv4 one is fine with one address', async () => {
    // rcpt.test: v6mx (10, AAAA only) then v4mx (20): one IPv6 session, then IPv4. No MX6 SRV.
    const r = await ctl('dns', 'check', 'rcpt.test')
    assert.deepEqual(problems(r), ['problem: no _mx6._tcp.rcpt.test SRV record (NXDOMAIN): MX6 is not published, MX6-aware senders deliver to the regular MX over IPv4 only'])
    const mx6 = await ctl('dns', 'check', 'mx6rcpt.test')
    assert.deepEqual(problems(mx6), [], mx6.out.join('\n'))
    assert.equal(mx6.code, 0)
  })

  describe('DNS errors', () => {
    let servfail: BadDns
    let silent: BadDns
    before(async () => {
      servfail = await BadDns.start('127.0.0.61', 'servfail')
      silent = await BadDns.start('127.0.0.62', 'drop')
    })
    after(async () => {
      await servfail?.stop()
      await silent?.stop()
    })

    it('SERVFAIL: a clear error line per failed lookup, exit 1, never "OK"', async () => {
      const r = await ctl('dns', 'check', 'dnsok.test', '--server', '127.0.0.61')
      assert.deepEqual(problems(r), [
        'error: DNS lookup SRV _mx6._tcp.dnsok.test failed: SRV lookup rcode 2 (SERVFAIL); the check is incomplete',
        'error: DNS lookup MX dnsok.test failed: MX lookup rcode 2 (SERVFAIL); the check is incomplete',
      ])
      assert.equal(r.code, 1)
      assert.ok(servfail.queries >= 2)
      assert.ok(!r.out.some((l) => l.startsWith('OK')))
    })

    it('timeout: an error line, exit 1, in bounded time', async () => {
      const t0 = Date.now()
      const r = await ctl('dns', 'check', 'dnsok.test', '--server', '127.0.0.62', '--timeout', '300')
      assert.equal(r.code, 1)
      const errs = problems(r)
      assert.equal(errs.length, 2, r.out.join('\n'))
      assert.match(errs[0], /^error: DNS lookup SRV _mx6\._tcp\.dnsok\.test failed: .*127\.0\.0\.62: .*timed out.*; the check is incomplete$/)
      assert.match(errs[1], /^error: DNS lookup MX dnsok\.test failed: .*timed out.*; the check is incomplete$/)
      assert.ok(r.out.every((l) => /^[\x20-\x7e]*$/.test(l)), 'printable ASCII only')
      assert.ok(silent.queries >= 2)
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
    })
  })
})

describe('e2e: mx6ctl dns records round-trips through dns check', function () {
  this.timeout(30000)
  before(() => void requireTestbed())

  /** Zone lines without comments, as [name, type, data] with the data's spacing normalised. */
  function records(lines: string[]): string[] {
    return lines
      .filter((l) => l.trim() && !l.startsWith(';'))
      .map((l) => {
        const [name, type, ...data] = l.trim().split(/\s+/)
        return `${name} ${type} ${data.join(' ')}`
      })
      .sort()
  }

  it('the records printed for dnsok.test are exactly what dns check finds there', async () => {
    const printed = await ctl('dns', 'records', '--domain', 'dnsok.test', '--mx6-host', 'mx6.dnsok.test', '--ipv6', '2001:DB8:53:0::6', '--ipv4', '198.51.100.53')
    assert.equal(printed.code, 0, printed.err.join('\n'))
    const want = records(printed.out)
    assert.deepEqual(want, [
      '_mx6._tcp.dnsok.test. SRV 0 0 25 mx6.dnsok.test.',
      'dnsok.test. MX 10 mx.dnsok.test.',
      'mx.dnsok.test. A 198.51.100.53',
      'mx6.dnsok.test. A 198.51.100.53',
      'mx6.dnsok.test. AAAA 2001:db8:53::6',
    ])
    // What the live zone holds, rebuilt from dns check --json.
    const check = await ctl('dns', 'check', 'dnsok.test', '--json')
    assert.equal(check.code, 0)
    const j = JSON.parse(check.out.join('\n'))
    const found: string[] = []
    for (const s of j.srv.records) {
      found.push(`${j.srv.name}. SRV ${s.priority} ${s.weight} ${s.port} ${s.target}.`)
      for (const a of s.aaaa.addresses) found.push(`${s.target}. AAAA ${a}`)
      for (const a of s.a.addresses) found.push(`${s.target}. A ${a}`)
    }
    for (const h of j.mx.hosts) {
      found.push(`${j.domain}. MX ${h.priority} ${h.exchange}.`)
      for (const a of h.a.addresses) found.push(`${h.exchange}. A ${a}`)
      for (const a of h.aaaa.addresses) found.push(`${h.exchange}. AAAA ${a}`)
    }
    assert.deepEqual(found.sort(), want)
  })

  it('with --ttl the TTL column is there and the records are the same', async () => {
    const r = await ctl('dns', 'records', '--domain', 'dnsok.test', '--mx6-host', 'mx6.dnsok.test', '--ipv6', '2001:db8:53::6', '--ipv4', '198.51.100.53', '--ttl', '300')
    assert.equal(r.code, 0)
    assert.ok(r.out.some((l) => /^_mx6\._tcp\.dnsok\.test\.\s+300\s+SRV\s+0 0 25 mx6\.dnsok\.test\.$/.test(l)), r.out.join('\n'))
  })
})
