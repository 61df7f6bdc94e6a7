// mx6-send's DNS cache with a table-driven client that answers like a real server.
import assert from 'node:assert/strict'
import { CachingResolver } from '../../plugins/lib/dns'
import { TableClient } from '../support/table-dns'

const answer = (type: number, ttl: number, fields: Record<string, unknown>) => ({ type, ttl, ...fields })

describe('mx6-send: CachingResolver', () => {
  let now = 0
  const clock = () => now
  beforeEach(() => {
    now = 1_000_000
  })

  it('parses SRV, MX, A and AAAA answers, ignoring other types (e.g. CNAME)', async () => {
    const c = new TableClient({
      'SRV _mx6._tcp.a.test': { rcode: 0, answers: [answer(5, 60, { target: 'x' }), answer(33, 60, { priority: 1, weight: 2, port: 25, target: 'MX6.A.Test.' })], authorities: [] },
      'MX a.test': { rcode: 0, answers: [answer(15, 60, { priority: 10, exchange: 'mx.a.test' })], authorities: [] },
      'A mx.a.test': { rcode: 0, answers: [answer(1, 60, { address: '198.51.100.1' })], authorities: [] },
      'AAAA mx6.a.test': { rcode: 0, answers: [answer(28, 60, { address: '2001:db8::6' })], authorities: [] },
    })
    const r = new CachingResolver(c, { negativeTtl: 60, maxTtl: 3600, now: clock })
    assert.deepEqual(await r.srv('_mx6._tcp.a.test'), { ok: [{ priority: 1, weight: 2, port: 25, target: 'mx6.a.test' }] })
    assert.deepEqual(await r.mx('a.test'), { ok: [{ priority: 10, exchange: 'mx.a.test' }] })
    assert.deepEqual(await r.a('mx.a.test'), { ok: ['198.51.100.1'] })
    assert.deepEqual(await r.aaaa('mx6.a.test'), { ok: ['2001:db8::6'] })
  })

  it('tells NXDOMAIN from NODATA, and SERVFAIL/REFUSED/timeouts are errors', async () => {
    const c = new TableClient({
      'SRV _mx6._tcp.nodata.test': { rcode: 0, answers: [], authorities: [] },
      'SRV _mx6._tcp.servfail.test': { rcode: 2, answers: [], authorities: [] },
      'SRV _mx6._tcp.refused.test': { rcode: 5, answers: [], authorities: [] },
      'SRV _mx6._tcp.slow.test': new Error('timeout'),
    })
    const r = new CachingResolver(c, { negativeTtl: 60, maxTtl: 3600, now: clock })
    assert.deepEqual(await r.srv('_mx6._tcp.nodata.test'), { none: 'nodata' })
    assert.deepEqual(await r.srv('_mx6._tcp.missing.test'), { none: 'nxdomain' })
    assert.match((await r.srv('_mx6._tcp.servfail.test') as { error: string }).error, /SERVFAIL/)
    assert.match((await r.srv('_mx6._tcp.refused.test') as { error: string }).error, /REFUSED/)
    assert.match((await r.srv('_mx6._tcp.slow.test') as { error: string }).error, /timeout/)
  })

  it('caches answers for their smallest TTL, bounded by max_ttl', async () => {
    const c = new TableClient({ 'A h.test': { rcode: 0, answers: [answer(1, 30, { address: '198.51.100.1' }), answer(1, 90, { address: '198.51.100.2' })], authorities: [] } })
    const r = new CachingResolver(c, { negativeTtl: 60, maxTtl: 3600, now: clock })
    await r.a('h.test')
    now += 29_000
    await r.a('h.test')
    assert.equal(c.queries.length, 1)
    now += 2_000
    await r.a('h.test')
    assert.equal(c.queries.length, 2)
    const capped = new CachingResolver(c, { negativeTtl: 60, maxTtl: 10, now: clock })
    await capped.a('h.test')
    now += 11_000
    await capped.a('h.test')
    assert.equal(c.queries.length, 4)
  })

  it('keeps at most max_entries answers, dropping the oldest first (new peers bring new names)', async () => {
    const c = new TableClient({})
    const r = new CachingResolver(c, { negativeTtl: 60, maxTtl: 3600, maxEntries: 3, now: clock })
    for (const n of ['a', 'b', 'c', 'd']) await r.a(`${n}.test`)
    assert.equal(r.size, 3)
    await r.a('b.test')
    assert.equal(c.queries.length, 4, 'b.test is still cached')
    await r.a('a.test')
    assert.equal(c.queries.length, 5, 'a.test, the oldest, was dropped and is asked again')
    assert.equal(r.size, 3)
  })

  it('caches NXDOMAIN/NODATA for the SOA minimum, or negative_ttl without SOA; never errors', async () => {
    const c = new TableClient({
      'SRV _mx6._tcp.soa.test': { rcode: 3, answers: [], authorities: [answer(6, 300, { minimum: 5 })] },
      'SRV _mx6._tcp.err.test': { rcode: 2, answers: [], authorities: [] },
    })
    const r = new CachingResolver(c, { negativeTtl: 60, maxTtl: 3600, now: clock })
    await r.srv('_mx6._tcp.soa.test')
    await r.srv('_mx6._tcp.nosoa.test')
    await r.srv('_mx6._tcp.err.test')
    now += 6_000
    await r.srv('_mx6._tcp.soa.test') // expired (SOA minimum 5 s)
    await r.srv('_mx6._tcp.nosoa.test') // still cached (60 s)
    await r.srv('_mx6._tcp.err.test') // errors are never cached
    assert.deepEqual(c.queries, ['SRV _mx6._tcp.soa.test', 'SRV _mx6._tcp.nosoa.test', 'SRV _mx6._tcp.err.test', 'SRV _mx6._tcp.soa.test', 'SRV _mx6._tcp.err.test'])
  })

  it('does not cache TTL 0 answers', async () => {
    const c = new TableClient({ 'A z.test': { rcode: 0, answers: [answer(1, 0, { address: '198.51.100.1' })], authorities: [] } })
    const r = new CachingResolver(c, { negativeTtl: 60, maxTtl: 3600, now: clock })
    await r.a('z.test')
    await r.a('z.test')
    assert.equal(c.queries.length, 2)
  })
})
