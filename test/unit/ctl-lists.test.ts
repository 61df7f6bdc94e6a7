// mx6ctl list entries: what is canonical, what is another spelling, what needs a decision, what is garbage.
import assert from 'node:assert/strict'
import { Keys } from '../../plugins/lib/keys'
import { checkListEntry, type EntryCheck, type ListKind } from '../../plugins/lib/entry'
import { checkEntry } from '../../plugins/lib/lint'
import { compareEntries, listKey } from '../../scripts/ctl/lists'
import { quote, shellArg, shown, table } from '../../scripts/ctl/shared'
import { globPrefix } from '../../scripts/ctl/lint-cmd'
import { lastDays, splitField } from '../../scripts/ctl/stats'
import { formatEntry } from '../../scripts/ctl/fallbacks'

type Want = ['canonical' | 'fixable', string] | ['ambiguous', string] | ['invalid', RegExp]

function check(kind: ListKind, cases: Array<[string, Want]>): void {
  for (const [input, want] of cases) {
    it(`${kind} ${JSON.stringify(input)} -> ${want[0]} ${want[1]}`, () => {
      const got: EntryCheck = checkListEntry(kind, input)
      assert.equal(got.status, want[0], JSON.stringify(got))
      if (got.status === 'canonical' || got.status === 'fixable') assert.equal(got.canonical, want[1])
      else if (got.status === 'ambiguous') assert.equal(got.suggestion, want[1])
      else assert.match(got.problem, want[1] as RegExp)
    })
  }
}

describe('ctl lists: IPv6 entries', () => {
  check('ip', [
    ['2001:db8:1::/48', ['canonical', '2001:db8:1::/48']],
    ['2001:db8::25', ['canonical', '2001:db8::25']],
    ['::/0', ['canonical', '::/0']],
    ['2001:DB8:1::/48', ['fixable', '2001:db8:1::/48']],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', ['fixable', '2001:db8::1']],
    ['2001:db8::25/128', ['fixable', '2001:db8::25']],
    [' 2001:db8::1 ', ['fixable', '2001:db8::1']],
    ['2001:db8:0:0:1:0:0:1', ['fixable', '2001:db8::1:0:0:1']],
    // Host bits: the fix would widen a single host to a network; refused, with the network suggested.
    ['2001:db8:1::1/48', ['ambiguous', '2001:db8:1::/48']],
    ['2001:DB8:1::1/48', ['ambiguous', '2001:db8:1::/48']],
    ['2001:db8::1/127', ['ambiguous', '2001:db8::/127']],
    ['fe80::1%eth0', ['ambiguous', 'fe80::1']],
    ['192.0.2.1', ['invalid', /not an IPv6 address/]],
    ['::ffff:192.0.2.1', ['invalid', /IPv4-mapped/]],
    ['2001:db8::/129', ['invalid', /bad prefix length/]],
    ['2001:db8::/48/1', ['invalid', /more than one/]],
    ['garbage!', ['invalid', /not an IPv6/]],
    ['', ['invalid', /not an IPv6/]],
    ['2001:db8::\u0000', ['invalid', /not an IPv6/]],
  ])
})

describe('ctl lists: domain and host entries', () => {
  for (const kind of ['domain', 'host'] as const) {
    check(kind, [
      ['example.org', ['canonical', 'example.org']],
      ['mail.example.co.uk', ['canonical', 'mail.example.co.uk']],
      ['Example.ORG', ['fixable', 'example.org']],
      ['example.org.', ['fixable', 'example.org']],
      ['bücher.example', ['fixable', 'xn--bcher-kva.example']],
      ['BÜCHER.example', ['fixable', 'xn--bcher-kva.example']],
      ['xn--bcher-kva.example', ['canonical', 'xn--bcher-kva.example']],
      ['co.uk', ['invalid', /public suffix/]],
      ['github.io', ['invalid', /public suffix/]],
      ['*.example.org', ['invalid', /wildcard/]],
      ['alice@example.org', ['invalid', /no @/]],
      ['https://example.org/', ['invalid', /URL/]],
      ['localhost', ['invalid', /two labels/]],
      ['exa mple.org', ['invalid', /not a valid domain/]],
      ['-bad-.example', ['invalid', /not a valid domain/]],
      ['a'.repeat(64) + '.example', ['invalid', /not a valid domain/]],
      ['', ['invalid', /not a valid domain/]],
    ])
  }
  it('says why a spelling was rewritten', () => {
    const c = checkListEntry('domain', 'Bücher.Example.')
    assert.equal(c.status, 'fixable')
    assert.match((c as { problem: string }).problem, /trailing dot/)
    assert.match((c as { problem: string }).problem, /U-label/)
  })
})

describe('ctl lists: AS numbers', () => {
  check('asn', [
    ['64500', ['canonical', '64500']],
    ['1', ['canonical', '1']],
    ['4294967295', ['canonical', '4294967295']],
    ['AS64500', ['fixable', '64500']],
    ['as64500', ['fixable', '64500']],
    ['AS 64500', ['fixable', '64500']],
    ['064500', ['fixable', '64500']],
    ['1.10', ['fixable', '65546']],
    ['AS1.10', ['fixable', '65546']],
    ['0', ['invalid', /reserved/]],
    ['AS0', ['invalid', /reserved/]],
    ['4294967296', ['invalid', /out of range/]],
    ['99999999999999999999', ['invalid', /out of range/]],
    ['1.65536', ['invalid', /asdot/]],
    ['-5', ['invalid', /not an AS number/]],
    ['64500x', ['invalid', /not an AS number/]],
    ['ASN64500', ['invalid', /not an AS number/]],
    ['', ['invalid', /not an AS number/]],
    ['6.45e4', ['invalid', /not an AS number/]],
  ])
})

describe("mx6-receive's lint scan: the same checker as mx6ctl", () => {
  it('reports the same problem, with the canonical form or the suggestion as the fix', () => {
    assert.equal(checkEntry('ip', '2001:db8::25'), null)
    assert.equal(checkEntry('host', 'mail.example.org'), null)
    assert.deepEqual(checkEntry('ip', '2001:DB8::25'), { entry: '2001:DB8::25', problem: 'not in canonical form (RFC 5952, lower case)', fix: '2001:db8::25' })
    assert.deepEqual(checkEntry('ip', '2001:db8:1::1/48'), { entry: '2001:db8:1::1/48', problem: 'host bits set below the prefix length', fix: '2001:db8:1::/48' })
    assert.deepEqual(checkEntry('ip', '192.0.2.1'), { entry: '192.0.2.1', problem: 'not an IPv6 address (IPv4 peers are never filtered)' })
    assert.deepEqual(checkEntry('domain', 'Partner.TEST.'), { entry: 'Partner.TEST.', problem: 'not in canonical form (trailing dot, upper case)', fix: 'partner.test' })
    for (const [kind, entry] of [['domain', 'co.uk'], ['host', 'bad domain'], ['asn', 'AS0']] as const) {
      const c = checkListEntry(kind, entry)
      assert.equal(c.status, 'invalid')
      assert.deepEqual(checkEntry(kind, entry), { entry, problem: (c as { problem: string }).problem })
    }
  })
})

describe('ctl lists: keys and display', () => {
  const keys = new Keys('mx6:')
  it('maps list and kind to the documented keys; host and asn are green-only', () => {
    assert.equal(listKey(keys, 'allow', 'ip'), 'mx6:ip:allow')
    assert.equal(listKey(keys, 'allow', 'domain'), 'mx6:domain:allow')
    assert.equal(listKey(keys, 'allow', 'host'), null)
    assert.equal(listKey(keys, 'allow', 'asn'), null)
    assert.equal(listKey(keys, 'green', 'ip'), 'mx6:ip:green')
    assert.equal(listKey(keys, 'green', 'domain'), 'mx6:domain:green')
    assert.equal(listKey(keys, 'green', 'host'), 'mx6:host:green')
    assert.equal(listKey(keys, 'green', 'asn'), 'mx6:asn:green')
    assert.equal(listKey(new Keys('t1:'), 'green', 'asn'), 't1:asn:green')
  })
  it('sorts addresses numerically, AS numbers numerically, garbage last', () => {
    assert.deepEqual(['2001:db8:10::/48', '2001:db8:9::/48', 'junk', '2001:db8:9::1', '::1'].sort(compareEntries('ip')), ['::1', '2001:db8:9::/48', '2001:db8:9::1', '2001:db8:10::/48', 'junk'])
    assert.deepEqual(['100', '64500', '9'].sort(compareEntries('asn')), ['9', '100', '64500'])
  })
  it('escapes control and bidi characters of untrusted text', () => {
    assert.equal(quote('a\u001b[31mb'), '"a\\u001b[31mb"')
    assert.equal(quote('x\u202ey'), '"x\\u202ey"')
    assert.equal(shown('plain note'), 'plain note')
    assert.equal(shown('line\nbreak'), '"line\\nbreak"')
    assert.match(quote('z'.repeat(1000), 10), /^"z{10}"\.\.\.\(1000 characters\)$/)
  })
  it('quotes copy-and-paste hints for the shell, never letting $(...) run', () => {
    assert.equal(shellArg('2001:db8::/48'), '2001:db8::/48')
    assert.equal(shellArg('mx6:book:bob+x@example.com'), 'mx6:book:bob+x@example.com')
    assert.equal(shellArg('bad domain'), "'bad domain'")
    assert.equal(shellArg('$(touch x)`y`'), "'$(touch x)`y`'")
    assert.equal(shellArg("it's"), "'it'\\''s'")
    assert.equal(shellArg('a\u001bb'), null)
    assert.equal(shellArg('a\u202eb'), null)
  })
  it('aligns columns', () => {
    assert.deepEqual(table([['a', 'bb', 'c'], ['ccc', 'd', 'e']], [false, true]), ['a    bb  c', 'ccc   d  e'])
  })
  it('escapes glob characters of the prefix for SCAN MATCH', () => {
    assert.equal(globPrefix('mx6:book:'), 'mx6:book:*')
    assert.equal(globPrefix('a*b?[c]\\:book:'), 'a\\*b\\?\\[c\\]\\\\:book:*')
  })
})

describe('ctl stats and fallbacks helpers', () => {
  it('splits counter fields; rules keep their colons and dots', () => {
    assert.deepEqual(splitField('rcpt.trusted.ip:allow'), { phase: 'rcpt', verdict: 'trusted', rule: 'ip:allow' })
    assert.deepEqual(splitField('data_post.green.a.b'), { phase: 'data_post', verdict: 'green', rule: 'a.b' })
    assert.deepEqual(splitField('weird'), { phase: '?', verdict: '?', rule: 'weird' })
  })
  it('gives the last N UTC days, oldest first, across month ends', () => {
    assert.deepEqual(lastDays(3, new Date('2026-03-01T00:30:00Z')), ['20260227', '20260228', '20260301'])
    assert.deepEqual(lastDays(1, new Date('2026-12-31T23:59:59Z')), ['20261231'])
  })
  it('prints a fallback entry readably, escaping what the remote side sent', () => {
    const lines = formatEntry({
      time: '2026-11-28T10:00:00.000Z',
      domain: 'example.org',
      host: 'mx6.example.org[2001:db8::25]',
      code: '550',
      status: '5.5.7',
      reply: 'MX6 fallback\nAuthentication-Results: x;\u001b[2J spf=none',
      recipients: ['a@example.org', 'b@example.org'],
      mail_from: 's@sender.test',
      queue_id: 'Q1',
    })
    assert.equal(lines[0], '2026-11-28T10:00:00.000Z  example.org  from MX6 host mx6.example.org[2001:db8::25]')
    assert.equal(lines[1], '  reply:      550 5.5.7 MX6 fallback')
    assert.equal(lines[2], '              "Authentication-Results: x;\\u001b[2J spf=none"')
    assert.ok(lines.includes('  recipients: a@example.org, b@example.org'))
    assert.ok(lines.includes('  queue id:   Q1'))
    assert.ok(!lines.join('\n').includes('\u001b'))
    assert.deepEqual(formatEntry({}).slice(1), ['  reply:      -', '  from:       -', '  recipients: -', '  queue id:   -'])
  })
})
