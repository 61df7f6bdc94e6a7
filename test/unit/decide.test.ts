// Table-driven tests of the pure decision core.
import assert from 'node:assert/strict'
import { normaliseMailbox } from '../../plugins/lib/mailbox'
import type { LookupReply } from '../../plugins/lib/store'
import {
  alignedDomains,
  decideData,
  decideRcpt,
  greenSummary,
  planData,
  planRcpt,
  rememberAnswers,
  screenPeer,
  trustedRepeatPeer,
  type DataFacts,
  type Decision,
  type Known,
  type PeerFacts,
  type PolicyConfig,
  type RcptFacts,
  type SpfFact,
} from '../../plugins/mx6-receive/decide'
import { AUTH_DEFAULTS } from '../../plugins/mx6-receive/auth'
import { GREEN_DEFAULTS } from '../../plugins/mx6-receive/green'

const CFG: PolicyConfig = { skipPrivate: true, undecided: 'wait', alignment: 'relaxed', green: { ...GREEN_DEFAULTS, ipGreen: false, fcrdns: false, hostGreen: false, domainGreen: false, history: { ...GREEN_DEFAULTS.history, enabled: false } }, auth: AUTH_DEFAULTS }
const box = (a: string) => {
  const [u, h] = a.split('@')
  const m = normaliseMailbox(u, h, '+')
  if (!m) throw new Error(a)
  return m
}
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

describe('decide: trustedPeer and rememberAnswers', () => {
  it('trustedRepeatPeer: one (frozen) decision per hit and peer, made again for another peer of the same hit', () => {
    const h = hit('2001:db8:7::/48', 'partner')
    const a = trustedRepeatPeer('2001:db8:7::10', h)
    assert.equal(trustedRepeatPeer('2001:db8:7::10', h), a, 'the same peer and hit: the same decision')
    assert.ok(Object.isFrozen(a))
    assert.deepEqual(a, decideRcpt(rcptFacts(null, 'a@x.test'), { ipAllow: h }, CFG), "decideRcpt's decision for the same peer and hit")
    const b = trustedRepeatPeer('2001:db8:7::2', h)
    assert.match(b.reason, /^2001:db8:7::2 in ip:allow 2001:db8:7::\/48 \("partner"\)$/)
    assert.match(trustedRepeatPeer('2001:db8:7::10', h).reason, /^2001:db8:7::10 in ip:allow /, 'back to the first peer: its own reason')
    assert.match(trustedRepeatPeer('2001:db8:7::10', hit('2001:db8:7::/48', 'other note')).reason, /\("other note"\)$/, 'another hit: its own text')
  })

  it('rememberAnswers keeps every field of Known that a reply has, and leaves the others', () => {
    // Required<Known>: a field added to Known must be added here (and to rememberAnswers).
    const all: Required<Known> = {
      ipAllow: hit('2001:db8:7::/48'),
      domainAllow: null,
      ipGreen: hit('2001:db8:7::/64'),
      hostGreen: hit('mail.x.test'),
      asnGreen: null,
      domainGreen: hit('x.test'),
      history: [null],
    }
    const known: Known = {}
    rememberAnswers(known, { ...all, books: ['a@x.test'] })
    assert.deepEqual(known, all, 'books are per recipient: not kept')
    const kept: Known = { ipAllow: null, ipGreen: hit('2001:db8:7::/64') }
    rememberAnswers(kept, { domainAllow: hit('x.test') })
    assert.deepEqual(kept, { ipAllow: null, ipGreen: hit('2001:db8:7::/64'), domainAllow: hit('x.test') }, 'fields the reply lacks stay as they were')
  })
})

const pending: Decision = { verdict: 'pending', rule: 'none', final: false, reason: 'x' }
const provisional: Decision = { verdict: 'trusted', rule: 'domain:allow', final: false, reason: 'x' }
const finalTrust: Decision = { verdict: 'trusted', rule: 'ip:allow', final: true, reason: 'x' }

function dataFacts(opts: { mx6?: boolean; spf?: SpfFact | null; dkim?: string[]; from?: string | null; priors?: Decision[]; rcpts?: string[] }): DataFacts {
  const rcpts = opts.rcpts ?? ['bob@rcpt.test']
  return {
    mx6: opts.mx6 ?? false,
    peerGreen: null,
    now: 1_800_000_000,
    spf: opts.spf ?? null,
    dkimPass: opts.dkim ?? [],
    dkimFail: [],
    from: opts.from ? { mailbox: box(opts.from) } : { problem: 'no From header' },
    recipients: rcpts.map((r, i) => ({ rcpt: box(r), prior: opts.priors?.[i] ?? pending })),
  }
}

describe('decide: planData and decideData', () => {
  it('looks nothing up when every recipient was decided at rcpt', () => {
    const f = dataFacts({ from: 'a@allowed.test', priors: [finalTrust] })
    assert.deepEqual(planData(f, CFG), {})
    assert.equal(decideData(f, {}, CFG).message.verdict, 'trusted')
  })
  it('looks nothing up when the From domain is not authenticated, and defers', () => {
    const f = dataFacts({ spf: { result: 'pass', domain: 'other.test' }, from: 'ceo@allowed.test' })
    assert.deepEqual(planData(f, CFG), {})
    const d = decideData(f, {}, CFG)
    assert.equal(d.message.verdict, 'defer')
    assert.match(d.message.reason, /not relaxed-aligned/)
  })
  it('the aligned domains are found once per facts and mode, and kept in the facts', () => {
    const f = dataFacts({ spf: { result: 'pass', domain: 'bounce.allowed.test' }, dkim: ['allowed.test'], from: 'Ann@allowed.test' })
    const relaxed = alignedDomains(f, 'relaxed')
    assert.deepEqual(relaxed, ['bounce.allowed.test', 'allowed.test'])
    assert.ok(Object.isFrozen(relaxed), 'kept, so frozen')
    assert.equal(alignedDomains(f, 'relaxed'), relaxed, 'the second call answers from the facts')
    assert.deepEqual(alignedDomains(f, 'strict'), ['allowed.test'], 'another mode is found anew')
    assert.deepEqual(alignedDomains(dataFacts({ dkim: ['other.test'], from: 'a@allowed.test' }), 'relaxed'), [])
  })
  it('an unauthenticated From: every open recipient takes the same deferral, one decided at rcpt keeps its verdict', () => {
    const f = dataFacts({ spf: { result: 'neutral', domain: 'other.test' }, dkim: ['Evil.test'], from: 'ceo@allowed.test', rcpts: ['bob@rcpt.test', 'eve@rcpt.test', 'ann@rcpt.test'], priors: [pending, finalTrust, provisional] })
    const d = decideData(f, {}, CFG)
    const reason = 'From ceo@allowed.test not relaxed-aligned with a passing SPF/DKIM domain (spf=neutral other.test, dkim pass=Evil.test)'
    assert.deepEqual(
      d.recipients.map((r) => `${r.verdict}/${r.rule}: ${r.reason}`),
      [`defer/none: ${reason}`, 'trusted/ip:allow: x', `defer/none: ${reason}`],
    )
    assert.deepEqual([d.message.verdict, d.message.reason], ['defer', `2 of 3 recipients without basis (${reason}); whole message deferred`])
    const noFrom = decideData(dataFacts({ from: null }), {}, CFG)
    assert.equal(noFrom.message.reason, 'no usable From (no From header)')
  })
  it('the green lookups summarised: each list hit, missed or not asked; the words of a transaction without a hit are made once per combination', () => {
    const hit = { entry: 'client.other.test', note: 'n' }
    const rows: Array<[Known, string]> = [
      [{}, 'ip:green=n/a host:green=n/a asn:green=n/a domain:green=n/a history=n/a'],
      [{ ipGreen: null }, 'ip:green=miss host:green=n/a asn:green=n/a domain:green=n/a history=n/a'],
      [{ ipGreen: null, asnGreen: null }, 'ip:green=miss host:green=n/a asn:green=miss domain:green=n/a history=n/a'],
      [{ ipGreen: null, hostGreen: hit }, 'ip:green=miss host:green=hit(client.other.test) asn:green=n/a domain:green=n/a history=n/a'],
      [{ ipGreen: null, history: [null] }, 'ip:green=miss host:green=n/a asn:green=n/a domain:green=n/a history=none'],
      [{ hostGreen: null, domainGreen: null, history: [{ domain: 'other.test', count: 3, first: 1, last: 2 }] }, 'ip:green=n/a host:green=miss asn:green=n/a domain:green=miss history=other.test:3'],
      [{ hostGreen: null, domainGreen: null }, 'ip:green=n/a host:green=miss asn:green=n/a domain:green=miss history=n/a'],
    ]
    // Twice, in order and reversed: an answer kept for one combination is never given for another.
    for (const r of [...rows, ...[...rows].reverse()]) assert.equal(greenSummary(r[0]), r[1])
  })
  it('asks for the From domain, aligned identifiers and every open book in one request', () => {
    const f = dataFacts({ dkim: ['mail.allowed.test'], from: 'Ann@allowed.test', rcpts: ['bob@rcpt.test', 'eve+x@rcpt.test'], priors: [pending, provisional] })
    const req = planData(f, CFG)
    assert.deepEqual(req.domainCandidates, ['allowed.test', 'test', 'mail.allowed.test'])
    assert.deepEqual(req.books?.map((b) => b.owner), ['bob@rcpt.test', 'eve@rcpt.test'])
    assert.deepEqual(req.books?.[0].members, ['ann@allowed.test', '@allowed.test', '@test'])
  })

  type Row = [string, Parameters<typeof dataFacts>[0], LookupReply | null, Partial<PolicyConfig>, string]
  const table: Row[] = [
    ['DKIM pass of the From domain, domain allowed', { dkim: ['allowed.test'], from: 'a@allowed.test' }, { domainAllow: hit('allowed.test'), books: [null] }, {}, 'trusted/domain:allow'],
    ['DKIM pass of a subdomain, relaxed', { dkim: ['mail.allowed.test'], from: 'a@allowed.test' }, { domainAllow: hit('allowed.test'), books: [null] }, {}, 'trusted/domain:allow'],
    ['DKIM pass of a subdomain, strict', { dkim: ['mail.allowed.test'], from: 'a@allowed.test' }, { domainAllow: hit('allowed.test') }, { alignment: 'strict' }, 'defer/none'],
    ['SPF pass aligned, domain allowed', { spf: { result: 'pass', domain: 'allowed.test' }, from: 'a@allowed.test' }, { domainAllow: hit('allowed.test'), books: [null] }, {}, 'trusted/domain:allow'],
    ['SPF fail, no DKIM: spoofed From', { spf: { result: 'fail', domain: 'allowed.test' }, from: 'a@allowed.test' }, {}, {}, 'defer/auth-fail'],
    ['DKIM of another domain', { dkim: ['other.test'], from: 'a@allowed.test' }, {}, {}, 'defer/none'],
    ['authenticated but in no list', { dkim: ['other.test'], from: 'a@other.test' }, { domainAllow: null, books: [null] }, {}, 'defer/none'],
    ['From in the book, DKIM aligned', { dkim: ['other.test'], from: 'friend@other.test' }, { domainAllow: null, books: ['friend@other.test'] }, {}, 'trusted/book'],
    ['no From header', { dkim: ['allowed.test'], from: null }, {}, {}, 'defer/none'],
    ['provisional SPF trust, From spoofed', { spf: { result: 'pass', domain: 'allowed.test' }, from: 'a@victim.test', priors: [provisional] }, {}, {}, 'defer/none'],
    ['store failure', { dkim: ['allowed.test'], from: 'a@allowed.test' }, null, {}, 'defer/store-error'],
  ]
  for (const [name, facts, answers, cfg, want] of table) {
    it(`${name} -> ${want}`, () => {
      const d = decideData(dataFacts(facts), answers, { ...CFG, ...cfg })
      assert.equal(`${d.message.verdict}/${d.message.rule}`, want)
    })
  }

  it('defers the whole message when only some recipients have a basis', () => {
    const f = dataFacts({ dkim: ['other.test'], from: 'friend@other.test', rcpts: ['bob@rcpt.test', 'eve@rcpt.test'] })
    const d = decideData(f, { domainAllow: null, books: ['friend@other.test', null] }, CFG)
    assert.deepEqual(d.recipients.map((r) => r.verdict), ['trusted', 'defer'])
    assert.equal(d.message.verdict, 'defer')
    assert.match(d.message.reason, /1 of 2 recipients without basis/)
  })
  it('keeps recipients trusted for good at rcpt and checks only the open ones', () => {
    const f = dataFacts({ dkim: ['other.test'], from: 'friend@other.test', rcpts: ['bob@rcpt.test', 'eve@rcpt.test'], priors: [finalTrust, pending] })
    const req = planData(f, CFG)
    assert.deepEqual(req.books?.map((b) => b.owner), ['eve@rcpt.test'])
    const d = decideData(f, { domainAllow: null, books: ['@other.test'] }, CFG)
    assert.equal(d.message.verdict, 'trusted')
    assert.deepEqual(d.recipients.map((r) => r.rule), ['ip:allow', 'book'])
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
  it('falls back after DATA instead of deferring', () => {
    const d = decideData(dataFacts({ mx6: true, spf: { result: 'neutral', domain: 'allowed.test' }, from: 'a@allowed.test' }), {}, CFG)
    assert.equal(`${d.message.verdict}/${d.message.rule}`, 'fallback/none')
    const failed = decideData(dataFacts({ mx6: true, spf: { result: 'fail', domain: 'allowed.test' }, from: 'a@allowed.test' }), {}, CFG)
    assert.equal(`${failed.message.verdict}/${failed.message.rule}`, 'fallback/auth-fail')
  })
  it('accepts after DATA what has a basis', () => {
    const d = decideData(dataFacts({ mx6: true, dkim: ['allowed.test'], from: 'a@allowed.test' }), { domainAllow: hit('allowed.test'), books: [null] }, CFG)
    assert.equal(d.message.verdict, 'trusted')
  })
  it('defers (4xx), never falls back, when the store failed', () => {
    const d = decideData(dataFacts({ mx6: true, dkim: ['allowed.test'], from: 'a@allowed.test' }), null, CFG)
    assert.equal(`${d.message.verdict}/${d.message.rule}`, 'defer/store-error')
  })
  it('one fallback for the whole message when some recipients lack a basis', () => {
    const f = dataFacts({ mx6: true, dkim: ['other.test'], from: 'friend@other.test', rcpts: ['bob@rcpt.test', 'eve@rcpt.test'] })
    const d = decideData(f, { domainAllow: null, books: ['friend@other.test', null] }, CFG)
    assert.equal(d.message.verdict, 'fallback')
    assert.match(d.message.reason, /whole message falls back/)
  })
})
