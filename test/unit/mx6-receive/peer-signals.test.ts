// The peer's DNS signals: FCrDNS and origin AS through a table-driven resolver.
import assert from 'node:assert/strict'
import { CachingResolver, type DnsClient, type RawReply, type RrType } from '../../../plugins/lib/dns'
import { reverseNibbles } from '../../../plugins/lib/ip'
import { cachedPeerSignals, fcrdns, gatherPeerSignals, originAsn, PeerSignalsMemo } from '../../../plugins/mx6-receive/peer-signals'

const IP = '2001:db8:7::10'
const PTR = `${reverseNibbles(IP)}.ip6.arpa`

type Zone = Record<string, RawReply | 'timeout'>
class TableDns implements DnsClient {
  constructor(private zone: Zone) {}
  async query(name: string, type: RrType): Promise<RawReply> {
    const r = this.zone[`${type} ${name}`]
    if (r === 'timeout') throw new Error('timeout')
    return r ?? { rcode: 3, answers: [], authorities: [] }
  }
}
const ans = (type: number, f: Record<string, unknown>): RawReply => ({ rcode: 0, answers: [{ type, ttl: 60, ...f }], authorities: [] })
const resolver = (z: Zone) => new CachingResolver(new TableDns(z), { negativeTtl: 0, maxTtl: 0 })

describe('peer-signals: reverse nibbles', () => {
  it('spells all 32 nibbles, least significant first', () => {
    assert.equal(reverseNibbles('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2')
  })
})

describe('peer-signals: forward-confirmed reverse DNS', () => {
  const base: Zone = { [`PTR ${PTR}`]: ans(12, { domain: 'Client.Other.Test.' }), 'AAAA client.other.test': ans(28, { address: IP }) }
  const rows: Array<[string, Zone, string | undefined, 'exact' | 'domain', string]> = [
    ['PTR resolves back and equals HELO', base, 'client.other.test', 'exact', 'pass'],
    ['HELO in another case with a trailing dot', base, 'CLIENT.other.test.', 'exact', 'pass'],
    ['HELO differs, exact mode', base, 'mail.other.test', 'exact', 'fail'],
    ['HELO in the same organizational domain, domain mode', base, 'mail.other.test', 'domain', 'pass'],
    ['HELO of another domain, domain mode', base, 'mail.elsewhere.test', 'domain', 'fail'],
    ['no PTR (NXDOMAIN)', {}, 'client.other.test', 'exact', 'fail'],
    ['PTR lookup SERVFAIL: signal absent', { [`PTR ${PTR}`]: { rcode: 2, answers: [], authorities: [] } }, 'client.other.test', 'exact', 'err'],
    ['PTR lookup timeout: signal absent', { [`PTR ${PTR}`]: 'timeout' }, 'client.other.test', 'exact', 'err'],
    ['PTR name without AAAA (NODATA)', { [`PTR ${PTR}`]: base[`PTR ${PTR}`], 'AAAA client.other.test': { rcode: 0, answers: [], authorities: [] } }, 'client.other.test', 'exact', 'fail'],
    ['PTR name resolving elsewhere', { [`PTR ${PTR}`]: base[`PTR ${PTR}`], 'AAAA client.other.test': ans(28, { address: '2001:db8::99' }) }, 'client.other.test', 'exact', 'fail'],
    ['AAAA lookup timeout: signal absent', { [`PTR ${PTR}`]: base[`PTR ${PTR}`], 'AAAA client.other.test': 'timeout' }, 'client.other.test', 'exact', 'err'],
  ]
  for (const [name, zone, helo, mode, want] of rows) {
    it(`${name} -> ${want}`, async () => {
      const r = await fcrdns(IP, helo, resolver(zone), mode)
      assert.equal(r.outcome, want, r.detail)
      if (want === 'pass') assert.deepEqual(r.confirmed, ['client.other.test'])
    })
  }
})

describe('peer-signals: peer signals from the resolver cache', () => {
  const zone = 'origin6.asn.test'
  const z: Zone = {
    [`PTR ${PTR}`]: ans(12, { domain: 'client.other.test.' }),
    'AAAA client.other.test': ans(28, { address: IP }),
    [`TXT ${reverseNibbles(IP)}.${zone}`]: ans(16, { data: ['64500 | 2001:db8::/32 | ZZ | test | 2020-01-01'] }),
  }
  for (const opts of [
    { fcrdns: true, asn: true, asnZone: zone },
    { fcrdns: true, asn: false, asnZone: zone },
    { fcrdns: false, asn: true, asnZone: zone },
  ]) {
    it(`once the answers are cached, the same signals without a query (fcrdns ${opts.fcrdns}, asn ${opts.asn})`, async () => {
      let t = 1_000_000
      const queries: string[] = []
      const table = new TableDns(z)
      const r = new CachingResolver({ query: (n, ty) => (queries.push(`${ty} ${n}`), table.query(n, ty)) }, { negativeTtl: 0, maxTtl: 3600, now: () => t })
      assert.equal(cachedPeerSignals(IP, r, opts), undefined, 'nothing cached yet')
      const live = await gatherPeerSignals(IP, r, opts)
      const asked = queries.length
      assert.ok(asked > 0)
      assert.deepEqual(cachedPeerSignals(IP, r, opts), live)
      // gatherPeerSignals answers a repeat peer from the cache alone: its lookups are never called.
      const refuse = (): Promise<never> => Promise.reject(new Error('looked up, not answered from the cache'))
      const cacheOnly = Object.assign(Object.create(r) as CachingResolver, { ptr: refuse, aaaa: refuse, txt: refuse })
      assert.deepEqual(await gatherPeerSignals(IP, cacheOnly, opts), live, 'gatherPeerSignals answers a repeat peer from the cache too')
      assert.equal(queries.length, asked, 'no query')
      t += 61_000
      assert.equal(cachedPeerSignals(IP, r, opts), undefined, 'an answer past its TTL (60 s) is not used')
    })
  }
  it('the memo computes a repeat peer once, until the first answer it used expires', async () => {
    let t = 1_000_000
    const ttl = (r: RawReply, s: number): RawReply => ({ ...r, answers: r.answers.map((a) => ({ ...a, ttl: s })) })
    // PTR 300 s, AAAA 60 s, TXT 120 s: the signals hold for 60 s.
    const zt: Zone = { [`PTR ${PTR}`]: ttl(z[`PTR ${PTR}`] as RawReply, 300), 'AAAA client.other.test': ttl(z['AAAA client.other.test'] as RawReply, 60), [`TXT ${reverseNibbles(IP)}.${zone}`]: ttl(z[`TXT ${reverseNibbles(IP)}.${zone}`] as RawReply, 120) }
    const r = new CachingResolver(new TableDns(zt), { negativeTtl: 0, maxTtl: 3600, now: () => t })
    const opts = { fcrdns: true, asn: true, asnZone: zone }
    const memo = new PeerSignalsMemo(r, opts)
    assert.equal(memo.cached(IP), undefined, 'nothing cached yet')
    const live = await memo.gather(IP)
    assert.equal(live.fcrdns.outcome, 'pass')
    assert.equal(live.asn.outcome, 'pass')
    let reads = 0
    const cached = r.cached.bind(r)
    r.cached = (...a: Parameters<CachingResolver['cached']>) => (reads++, cached(...a))
    const first = memo.cached(IP)
    assert.deepEqual(first, live)
    assert.ok(first && Object.isFrozen(first) && Object.isFrozen(first.fcrdns) && Object.isFrozen(first.fcrdns.confirmed), 'shared, so frozen')
    const readsOnce = reads
    assert.ok(readsOnce > 0)
    t += 59_000
    assert.equal(memo.cached(IP), first, 'the same result, 59 s later')
    assert.equal(await memo.gather(IP), first)
    assert.equal(reads, readsOnce, 'the resolver cache was not read again')
    t += 2_000
    assert.equal(memo.cached(IP), undefined, 'the AAAA answer (60 s) has expired: not from the memo either')
    assert.ok(reads > readsOnce)
  })
  it('the memo is bounded: the oldest peer goes first', async () => {
    const t = 1_000_000
    const peers = ['2001:db8:7::10', '2001:db8:7::11', '2001:db8:7::12']
    const zb: Zone = Object.fromEntries(peers.map((ip) => [`PTR ${reverseNibbles(ip)}.ip6.arpa`, { rcode: 3, answers: [], authorities: [{ type: 6, ttl: 300, minimum: 300 }] }]))
    const r = new CachingResolver(new TableDns(zb), { negativeTtl: 0, maxTtl: 3600, now: () => t })
    const memo = new PeerSignalsMemo(r, { fcrdns: true, asn: false, asnZone: zone }, 2)
    for (const ip of peers) await memo.gather(ip)
    const kept = peers.map((ip) => memo.cached(ip))
    let reads = 0
    const cached = r.cached.bind(r)
    r.cached = (...a: Parameters<CachingResolver['cached']>) => (reads++, cached(...a))
    // The last two are in the memo; the first was dropped and is read from the resolver's cache again.
    assert.equal(memo.cached(peers[2]), kept[2])
    assert.equal(reads, 0)
    assert.equal(memo.cached(peers[0])?.fcrdns.outcome, 'fail')
    assert.equal(reads, 1)
  })
  it('a cached NXDOMAIN for the PTR is an answer too; an uncached AAAA of a PTR name is not', async () => {
    let t = 1_000_000
    const soa = { type: 6, ttl: 300, minimum: 300 }
    const nx: Zone = { [`PTR ${PTR}`]: { rcode: 3, answers: [], authorities: [soa] } }
    const r = new CachingResolver(new TableDns(nx), { negativeTtl: 0, maxTtl: 3600, now: () => t })
    await gatherPeerSignals(IP, r, { fcrdns: true, asn: false, asnZone: zone })
    assert.equal(cachedPeerSignals(IP, r, { fcrdns: true, asn: false, asnZone: zone })?.fcrdns.outcome, 'fail')
    const partial = new CachingResolver(new TableDns(z), { negativeTtl: 0, maxTtl: 3600, now: () => t })
    await partial.ptr(PTR)
    assert.equal(cachedPeerSignals(IP, partial, { fcrdns: true, asn: false, asnZone: zone }), undefined)
  })
})

describe('peer-signals: origin AS (Team Cymru style zone)', () => {
  const zone = 'origin6.asn.test'
  const rows: Array<[string, Zone, string, string[]]> = [
    ['one AS', { [`TXT ${reverseNibbles(IP)}.${zone}`]: ans(16, { data: ['64500 | 2001:db8::/32 | ZZ | test | 2020-01-01'] }) }, 'pass', ['64500']],
    ['several AS numbers', { [`TXT ${reverseNibbles(IP)}.${zone}`]: ans(16, { data: ['64500 64501 | 2001:db8::/32 | ZZ | test | 2020-01-01'] }) }, 'pass', ['64500', '64501']],
    ['unparseable record', { [`TXT ${reverseNibbles(IP)}.${zone}`]: ans(16, { data: ['nonsense'] }) }, 'fail', []],
    ['not announced (NXDOMAIN)', {}, 'fail', []],
    ['SERVFAIL: signal absent', { [`TXT ${reverseNibbles(IP)}.${zone}`]: { rcode: 2, answers: [], authorities: [] } }, 'err', []],
    ['timeout: signal absent', { [`TXT ${reverseNibbles(IP)}.${zone}`]: 'timeout' }, 'err', []],
  ]
  for (const [name, z, want, asns] of rows) {
    it(`${name} -> ${want}`, async () => {
      const r = await originAsn(IP, resolver(z), zone)
      assert.equal(r.outcome, want, r.detail)
      assert.deepEqual(r.asns, asns)
    })
  }
})

