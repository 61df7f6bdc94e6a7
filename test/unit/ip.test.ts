import assert from 'node:assert/strict'
import { candidatePrefixes, checkV6Entry, classifyPeer, joinedPrefixes, matchesListener, parseListener, PREFIX_MEMO_SIZE } from '../../plugins/lib/ip'

describe('ip: classifyPeer', () => {
  const cases: Array<[string, ReturnType<typeof classifyPeer>]> = [
    ['192.0.2.1', { family: 'ipv4', canonical: '192.0.2.1' }],
    ['::ffff:192.0.2.1', { family: 'ipv4', canonical: '192.0.2.1' }],
    ['::FFFF:c000:0201', { family: 'ipv4', canonical: '192.0.2.1' }],
    ['2001:db8::1', { family: 'ipv6', canonical: '2001:db8::1' }],
    ['2001:DB8:0000:0:0:0:0:1', { family: 'ipv6', canonical: '2001:db8::1' }],
    ['2001:db8:0:0:1:0:0:1', { family: 'ipv6', canonical: '2001:db8::1:0:0:1' }],
    ['fe80::1%eth0', { family: 'ipv6', canonical: 'fe80::1' }],
    ['::1', { family: 'ipv6', canonical: '::1' }],
    ['not an ip', null],
    ['', null],
    ['1.2.3.4.5', null],
  ]
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} -> ${JSON.stringify(want)}`, () => assert.deepEqual(classifyPeer(input), want))
  }
})

describe('ip: candidatePrefixes', () => {
  it('gives all 129 canonical networks, longest first, the /128 without suffix', () => {
    const c = candidatePrefixes('2001:db8:7::10')
    assert.equal(c.length, 129)
    assert.equal(c[0], '2001:db8:7::10')
    assert.equal(c[1], '2001:db8:7::10/127')
    assert.equal(c[5], '2001:db8:7::/123')
    assert.ok(c.includes('2001:db8:7::/64'))
    assert.ok(c.includes('2001:db8::/32'))
    assert.equal(c[128], '::/0')
    assert.equal(new Set(c).size, 129)
  })
  it('every candidate is itself a canonical entry that covers the address', () => {
    for (const cand of candidatePrefixes('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff')) {
      assert.deepEqual(checkV6Entry(cand), { ok: true, canonical: cand }, cand)
    }
  })
  it('the joined form is the candidates joined by newlines, the same string for the same array', () => {
    const c = candidatePrefixes('2001:db8:7::10')
    const j = joinedPrefixes(c)
    assert.equal(j, [...c].join('\n'))
    assert.equal(joinedPrefixes(c), j)
    assert.equal(joinedPrefixes(['2001:db8::/32', '::/0']), '2001:db8::/32\n::/0')
  })
  it(`remembers the candidates of the last ${PREFIX_MEMO_SIZE} addresses, no more (memory stays bounded whatever the peers)`, () => {
    const first = candidatePrefixes('2001:db8:77::1')
    assert.equal(candidatePrefixes('2001:db8:77::1'), first, 'a repeat address gets the same array')
    for (let i = 0; i < PREFIX_MEMO_SIZE; i++) candidatePrefixes(`2001:db8:78::${(i + 1).toString(16)}`)
    const again = candidatePrefixes('2001:db8:77::1')
    assert.notEqual(again, first, 'the oldest address was dropped')
    assert.deepEqual(again, first)
  })
  it('handles CIDR edges at byte and nibble boundaries', () => {
    const c = candidatePrefixes('2001:db8:abcd:12ff::1')
    assert.equal(c[128 - 56], '2001:db8:abcd:1200::/56')
    assert.equal(c[128 - 52], '2001:db8:abcd:1000::/52')
    assert.equal(c[128 - 49], '2001:db8:abcd::/49')
    assert.equal(c[128 - 48], '2001:db8:abcd::/48')
    assert.equal(c[128 - 1], '::/1')
    assert.equal(candidatePrefixes('8000::1')[128 - 1], '8000::/1')
  })
})

describe('ip: checkV6Entry (list entries as typed by operators)', () => {
  const cases: Array<[string, boolean, string | undefined]> = [
    ['2001:db8::/32', true, '2001:db8::/32'],
    ['2001:db8:1::/48', true, '2001:db8:1::/48'],
    ['2001:db8::1', true, '2001:db8::1'],
    ['::/0', true, '::/0'],
    ['2001:DB8::/32', false, '2001:db8::/32'],
    ['2001:0db8::/32', false, '2001:db8::/32'],
    ['2001:db8::1/32', false, '2001:db8::/32'],
    ['2001:db8::1/128', false, '2001:db8::1'],
    [' 2001:db8::1', false, '2001:db8::1'],
    ['fe80::1%eth0', false, 'fe80::1'],
    ['2001:db8::/129', false, undefined],
    ['2001:db8::/-1', false, undefined],
    ['2001:db8::/32/1', false, undefined],
    ['192.0.2.0/24', false, undefined],
    ['::ffff:192.0.2.1', false, undefined],
    ['junk', false, undefined],
  ]
  for (const [input, ok, fix] of cases) {
    it(`${JSON.stringify(input)} ${ok ? 'is canonical' : `-> fix ${fix}`}`, () => {
      const r = checkV6Entry(input)
      assert.equal(r.ok, ok)
      if (r.ok) assert.equal(r.canonical, fix)
      else assert.equal(r.fix, fix)
    })
  }
})

describe('ip: MX6 listeners', () => {
  it('parses addresses with and without a port', () => {
    assert.deepEqual(parseListener('2001:DB8:25::6'), { ip: '2001:db8:25::6', port: null })
    assert.deepEqual(parseListener('[2001:db8:25::6]:2525'), { ip: '2001:db8:25::6', port: 2525 })
    for (const bad of ['192.0.2.1', '[2001:db8::6]:0', '[2001:db8::6]:70000', '2001:db8::/64', '::ffff:192.0.2.1', 'mx6.example']) {
      assert.ok('error' in parseListener(bad), bad)
    }
  })
  it('matches the local address of a connection, any port or the given one', () => {
    const ls = [parseListener('2001:db8:25::6'), parseListener('[2001:db8:25::7]:25')] as Array<{ ip: string; port: number | null }>
    assert.equal(matchesListener('2001:db8:25:0::6', 25, ls), true)
    assert.equal(matchesListener('2001:db8:25::6', 2525, ls), true)
    assert.equal(matchesListener('2001:db8:25::7', 25, ls), true)
    assert.equal(matchesListener('2001:db8:25::7', 2525, ls), false)
    assert.equal(matchesListener('2001:db8:25::25', 25, ls), false)
    assert.equal(matchesListener('198.51.100.25', 25, ls), false)
    assert.equal(matchesListener('2001:db8:25::6', 25, []), false)
  })
})
