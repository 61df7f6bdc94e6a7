import assert from 'node:assert/strict'
import { aligned, canonicalDomain, domainCandidates, isPublicSuffix, orgDomain } from '../../plugins/lib/domain'
import { Keys, validPrefix } from '../../plugins/lib/keys'
import { normaliseMailbox } from '../../plugins/lib/mailbox'

describe('domain: canonicalDomain', () => {
  const cases: Array<[unknown, string | null]> = [
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['_dmarc.example.com', '_dmarc.example.com'],
    ['com', null],
    ['', null],
    ['a..b', null],
    ['-a.example', null],
    ['a b.example', null],
    ['evil.example\r\nX: y', null],
    [`${'a'.repeat(64)}.example`, null],
    [`${'a.'.repeat(130)}example`, null],
    [42, null],
  ]
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input).slice(0, 40)} -> ${want}`, () => assert.equal(canonicalDomain(input), want))
  }
})

describe('domain: isPublicSuffix', () => {
  const cases: Array<[string, boolean]> = [
    ['com', true],
    ['co.uk', true],
    ['github.io', true],
    ['example.com', false],
    ['mail.example.co.uk', false],
    ['alice.github.io', false],
    ['_dmarc.example.com', false],
    ['unknowntld.zzzz', false],
    // Malformed names have no registrable domain: they count as suffixes, so entries of them are refused.
    ['', true],
    ['a..b', true],
    ['.com', true],
    ['-x.com', true],
    ['a b.com', true],
    ['*.com', true],
    ['1.2.3.4', true],
    ['example.123', true],
    ['2001:db8::1', true],
    [`${'a'.repeat(64)}.com`, true],
  ]
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input).slice(0, 40)} -> ${want}`, () => assert.equal(isPublicSuffix(input), want))
  }
})

describe('domain: candidates and alignment', () => {
  it('lists the domain and its parents', () => {
    assert.deepEqual(domainCandidates('a.b.example.com'), ['a.b.example.com', 'b.example.com', 'example.com', 'com'])
  })
  it('finds organizational domains with the Public Suffix List', () => {
    assert.equal(orgDomain('mail.example.co.uk'), 'example.co.uk')
    assert.equal(orgDomain('a.b.allowed.test'), 'allowed.test')
    assert.equal(orgDomain('alice.github.io'), 'alice.github.io')
  })
  const table: Array<[string, string, boolean, boolean]> = [
    // auth domain, From domain, relaxed, strict
    ['example.com', 'example.com', true, true],
    ['mail.example.com', 'example.com', true, false],
    ['example.com', 'news.example.com', true, false],
    ['a.example.co.uk', 'b.example.co.uk', true, false],
    ['example.co.uk', 'other.co.uk', false, false],
    ['alice.github.io', 'bob.github.io', false, false],
    ['example.org', 'example.com', false, false],
  ]
  for (const [auth, from, relaxed, strict] of table) {
    it(`${auth} vs From ${from}: relaxed=${relaxed} strict=${strict}`, () => {
      assert.equal(aligned(auth, from, 'relaxed'), relaxed)
      assert.equal(aligned(auth, from, 'strict'), strict)
    })
  }
})

describe('mailbox: normaliseMailbox', () => {
  const cases: Array<[string, string, string, string | null]> = [
    ['Bob', 'Example.COM', '+', 'bob@example.com'],
    ['bob+lists', 'example.com', '+', 'bob@example.com'],
    ['bob+lists', 'example.com', '', 'bob+lists@example.com'],
    ['+only', 'example.com', '+', '+only@example.com'],
    ['bob-x', 'example.com', '-', 'bob@example.com'],
    ['Üser', 'bücher.example', '+', 'üser@xn--bcher-kva.example'],
    ['', 'example.com', '+', null],
    ['bob', '', '+', null],
    ['bo\r\nb', 'example.com', '+', null],
    ['a'.repeat(400), 'example.com', '+', null],
    ['bob', 'not a domain', '+', null],
  ]
  for (const [user, host, delim, want] of cases) {
    it(`${JSON.stringify(user).slice(0, 30)}@${host} (delimiter ${JSON.stringify(delim)}) -> ${want}`, () => {
      assert.equal(normaliseMailbox(user, host, delim)?.address ?? null, want)
    })
  }
})

describe('keys', () => {
  it('builds every key under the prefix', () => {
    const k = new Keys('mx6:')
    assert.equal(k.ipAllow, 'mx6:ip:allow')
    assert.equal(k.domainAllow, 'mx6:domain:allow')
    assert.equal(k.book('bob@example.com'), 'mx6:book:bob@example.com')
    assert.equal(new Keys('site1:mx6:').stats('20261128'), 'site1:mx6:stats:20261128')
  })
  it('refuses prefixes that are empty, spaced, braced or overlong', () => {
    for (const p of ['', 'a b', '{x}:', 'x\n', 'p'.repeat(65)]) {
      assert.equal(validPrefix(p), false, p)
      assert.throws(() => new Keys(p))
    }
  })
})
