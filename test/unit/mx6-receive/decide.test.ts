// Table-driven tests of the pure decision core: screening and the RCPT phase.
import assert from 'node:assert/strict'
import type { LookupReply } from '../../../plugins/lib/store'
import { decideRcpt, planRcpt, screenPeer, trustedPeer, withAnswers, type Known, type PeerFacts, type PolicyConfig, type RcptFacts, type SpfFact } from '../../../plugins/mx6-receive/decide'
import { box, CFG } from './policy'

const peer = (ip: string, more: Partial<PeerFacts> = {}): PeerFacts => ({ ip, private: false, relaying: false, authenticated: false, ...more })
const hit = (entry: string, note = '') => ({ entry, note })

describe('decide: screenPeer', () => {
  const cases: Array<[string, PeerFacts, Partial<PolicyConfig>, string]> = [
    ['IPv4', peer('192.0.2.1'), {}, 'skip:ipv4'],
    ['IPv4-mapped IPv6', peer('::ffff:192.0.2.1'), {}, 'skip:ipv4'],
    ['relaying IPv6', peer('2001:db8::1', { relaying: true }), {}, 'skip:relaying'],
    ['authenticated IPv6', peer('2001:db8::1', { authenticated: true }), {}, 'skip:auth'],
    ['private IPv6, default', peer('fd00::1', { private: true }), {}, 'skip:private'],
    ['private IPv6, skip_private=false', peer('fd00::1', { private: true }), { skipPrivate: false }, 'ipv6:fd00::1'],
    ['loopback, skip_private=false', peer('::1', { private: true }), { skipPrivate: false }, 'ipv6:::1'],
    ['public IPv6, non-canonical text', peer('2001:DB8:0::7'), {}, 'ipv6:2001:db8::7'],
    ['garbage', peer('nope'), {}, 'skip:bad-peer'],
  ]
  for (const [name, p, cfg, want] of cases) {
    it(`${name} -> ${want}`, () => {
      const s = screenPeer(p, { ...CFG, ...cfg })
      assert.equal('skip' in s ? `skip:${s.skip.rule}` : `ipv6:${s.ipv6}`, want)
    })
  }
})

function rcptFacts(spf: SpfFact | null, mailFrom: string | null, rcpt = 'bob@rcpt.test'): RcptFacts {
  return { ipv6: '2001:db8:7::10', mx6: false, now: 1_800_000_000, spf, mailFrom: mailFrom ? box(mailFrom) : null, rcpt: box(rcpt) }
}

describe('decide: planRcpt', () => {
  it('asks for the 129 prefixes only when SPF did not pass', () => {
    const req = planRcpt(rcptFacts({ result: 'fail', domain: 'allowed.test' }, 'a@allowed.test'), {}, CFG)
    assert.equal(req.ipCandidates?.length, 129)
    assert.equal(req.domainCandidates, undefined)
    assert.equal(req.books, undefined)
  })
  it('asks for prefixes, SPF domain and the book in one request when SPF passed', () => {
    const req = planRcpt(rcptFacts({ result: 'pass', domain: 'Mail.Allowed.test' }, 'A@mail.allowed.test', 'Bob+x@rcpt.test'), {}, CFG)
    assert.equal(req.ipCandidates?.length, 129)
    assert.deepEqual(req.domainCandidates, ['mail.allowed.test', 'allowed.test', 'test'])
    assert.deepEqual(req.books, [{ owner: 'bob@rcpt.test', members: ['a@mail.allowed.test', '@mail.allowed.test', '@allowed.test', '@test'] }])
  })
  it('does not ask again what this transaction already knows', () => {
    const f = rcptFacts({ result: 'pass', domain: 'allowed.test' }, 'a@allowed.test')
    assert.deepEqual(planRcpt(f, { ipAllow: hit('2001:db8:7::/48') }, CFG), {})
    const req = planRcpt(f, { ipAllow: null, domainAllow: null }, CFG)
    assert.equal(req.ipCandidates, undefined)
    assert.equal(req.domainCandidates, undefined)
    assert.equal(req.books?.length, 1)
  })
  it('never uses the envelope sender when SPF passed for another domain (null sender via HELO)', () => {
    const req = planRcpt(rcptFacts({ result: 'pass', domain: 'helo.other.test' }, 'a@allowed.test'), {}, CFG)
    assert.equal(req.books, undefined)
  })
})

describe('decide: decideRcpt', () => {
  const pass = { result: 'pass', domain: 'allowed.test' }
  const cases: Array<[string, RcptFacts, (LookupReply & { domainAllow?: ReturnType<typeof hit> | null }) | null, Partial<PolicyConfig>, string]> = [
    ['ip:allow hit', rcptFacts(null, 'a@x.test'), { ipAllow: hit('2001:db8:7::/48', 'partner') }, {}, 'trusted/ip:allow/final'],
    ['book hit with SPF pass', rcptFacts(pass, 'a@allowed.test'), { ipAllow: null, domainAllow: null, books: ['a@allowed.test'] }, {}, 'trusted/book/final'],
    ['domain:allow with SPF pass is provisional', rcptFacts(pass, 'a@allowed.test'), { ipAllow: null, domainAllow: hit('allowed.test'), books: [null] }, {}, 'trusted/domain:allow/open'],
    ['nothing, undecided=wait', rcptFacts(pass, 'a@allowed.test'), { ipAllow: null, domainAllow: null, books: [null] }, {}, 'pending/none/open'],
    ['nothing, undecided=defer', rcptFacts(pass, 'a@allowed.test'), { ipAllow: null, domainAllow: null, books: [null] }, { undecided: 'defer' }, 'defer/none/final'],
    ['SPF temperror, undecided=defer', rcptFacts({ result: 'temperror', domain: 'allowed.test' }, 'a@allowed.test'), { ipAllow: null }, { undecided: 'defer' }, 'defer/auth-fail/final'],
    ['SPF neutral, undecided=defer', rcptFacts({ result: 'neutral', domain: 'allowed.test' }, 'a@allowed.test'), { ipAllow: null }, { undecided: 'defer' }, 'defer/none/final'],
    ['store failure', rcptFacts(pass, 'a@allowed.test'), null, {}, 'defer/store-error/final'],
  ]
  for (const [name, f, answers, cfg, want] of cases) {
    it(`${name} -> ${want}`, () => {
      const d = decideRcpt(f, answers, { ...CFG, ...cfg })
      assert.equal(`${d.verdict}/${d.rule}/${d.final ? 'final' : 'open'}`, want)
      assert.ok(d.reason.length > 0)
    })
  }
  it('says which entry matched, with its note', () => {
    const d = decideRcpt(rcptFacts(null, 'a@x.test'), { ipAllow: hit('2001:db8:7::/48', 'partner') }, CFG)
    assert.match(d.reason, /2001:db8:7::\/48 \("partner"\)/)
  })
})

describe('decide: trustedPeer and withAnswers', () => {
  it('trustedPeer names the peer, the entry and its note', () => {
    const h = hit('2001:db8:7::/48', 'partner')
    const a = trustedPeer('2001:db8:7::2', h)
    assert.deepEqual(a, { verdict: 'trusted', rule: 'ip:allow', final: true, reason: '2001:db8:7::2 in ip:allow 2001:db8:7::/48 ("partner")', entry: '2001:db8:7::/48' })
    assert.deepEqual(a, decideRcpt({ ...rcptFacts(null, 'a@x.test'), ipv6: '2001:db8:7::2' }, { ipAllow: h }, CFG), "decideRcpt's decision for the same peer and hit")
  })

  it('withAnswers adds every field of Known that a reply has, leaves the others, and changes nothing in place', () => {
    // Required<Known>: a field added to Known must be added here.
    const all: Required<Known> = {
      ipAllow: hit('2001:db8:7::/48'),
      domainAllow: null,
      ipGreen: hit('2001:db8:7::/64'),
      hostGreen: hit('mail.x.test'),
      asnGreen: null,
      domainGreen: hit('x.test'),
      history: [null],
    }
    assert.deepEqual(withAnswers({}, { ...all, books: ['a@x.test'] }), all, 'books are per recipient: not kept')
    const kept: Known = Object.freeze({ ipAllow: null, ipGreen: hit('2001:db8:7::/64') })
    const got = withAnswers(kept, { domainAllow: hit('x.test') })
    // What was not answered stays undefined ("not asked"), whether or not the key is there.
    assert.deepEqual(JSON.parse(JSON.stringify(got)), { ipAllow: null, ipGreen: hit('2001:db8:7::/64'), domainAllow: hit('x.test') }, 'fields the reply lacks stay as they were')
  })
})

describe('decide: MX6 sessions', () => {
  it('never defers at RCPT for lack of a basis, even with undecided=defer', () => {
    const f = { ...rcptFacts({ result: 'fail', domain: 'x.test' }, 'a@x.test'), mx6: true }
    const d = decideRcpt(f, { ipAllow: null }, { ...CFG, undecided: 'defer' })
    assert.equal(`${d.verdict}/${d.rule}`, 'pending/none')
    assert.match(d.reason, /MX6 session/)
  })
  it('still defers (4xx) at RCPT when the store failed', () => {
    const f = { ...rcptFacts(null, 'a@x.test'), mx6: true }
    assert.equal(decideRcpt(f, null, CFG).verdict, 'defer')
  })
})
