// Table-driven tests of the pure decision core after DATA.
import assert from 'node:assert/strict'
import type { LookupReply } from '../../../plugins/lib/store'
import type { Decision, Known, PolicyConfig, SpfFact } from '../../../plugins/mx6-receive/decide'
import { authenticatedDomains, decideData, planData, type DataFacts } from '../../../plugins/mx6-receive/decide-data'
import type { ArcOutcome } from '../../../plugins/mx6-receive/arc'
import type { DmarcOutcome } from '../../../plugins/mx6-receive/dmarc'
import { greenSummary } from '../../../plugins/mx6-receive/green'
import { box, CFG } from './policy'

const hit = (entry: string, note = '') => ({ entry, note })

const pending: Decision = { verdict: 'pending', rule: 'none', final: false, reason: 'x' }
const provisional: Decision = { verdict: 'trusted', rule: 'domain:allow', final: false, reason: 'x' }
const finalTrust: Decision = { verdict: 'trusted', rule: 'ip:allow', final: true, reason: 'x' }

function dataFacts(opts: { mx6?: boolean; spf?: SpfFact | null; dkim?: string[]; from?: string | null; priors?: Decision[]; rcpts?: string[]; dmarc?: DmarcOutcome; arc?: ArcOutcome }, cfg: PolicyConfig = CFG): DataFacts {
  const rcpts = opts.rcpts ?? ['bob@rcpt.test']
  const f = {
    mx6: opts.mx6 ?? false,
    peerGreen: null,
    now: 1_800_000_000,
    spf: opts.spf ?? null,
    dkimPass: opts.dkim ?? [],
    dkimFail: [],
    from: opts.from ? { mailbox: box(opts.from) } : { problem: 'no From header' },
    recipients: rcpts.map((r, i) => ({ rcpt: box(r), prior: opts.priors?.[i] ?? pending })),
    dmarc: opts.dmarc,
    arc: opts.arc,
  }
  return { ...f, aligned: authenticatedDomains(f, cfg.alignment) }
}

describe('decide-data: planData and decideData', () => {
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
  it('the aligned domains: passing SPF and DKIM domains aligned with the From domain, per mode', () => {
    const f = dataFacts({ spf: { result: 'pass', domain: 'bounce.allowed.test' }, dkim: ['allowed.test'], from: 'Ann@allowed.test' })
    assert.deepEqual(authenticatedDomains(f, 'relaxed'), ['bounce.allowed.test', 'allowed.test'])
    assert.deepEqual(authenticatedDomains(f, 'strict'), ['allowed.test'])
    assert.deepEqual(authenticatedDomains(dataFacts({ dkim: ['other.test'], from: 'a@allowed.test' }), 'relaxed'), [])
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
  it('the green lookups summarised: each list hit, missed or not asked', () => {
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
    for (const r of rows) assert.equal(greenSummary(r[0]), r[1])
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
      const policy = { ...CFG, ...cfg }
      const f = dataFacts(facts)
      const d = decideData({ ...f, aligned: authenticatedDomains(f, policy.alignment) }, answers, policy)
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

describe('decide-data: MX6 sessions', () => {
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

describe('decide-data: DMARC and ARC', () => {
  const STRICT: PolicyConfig = { ...CFG, alignment: 'strict' }
  const dmarc = (result: DmarcOutcome['result'], aligned: string | null = null, policy: DmarcOutcome['policy'] = 'reject'): DmarcOutcome => ({
    result,
    domain: 'allowed.test',
    policy,
    aligned,
    authResults: `dmarc=${result} header.from=allowed.test`,
  })
  const arc = (o: Partial<ArcOutcome> = {}): ArcOutcome => ({ chain: 'pass', temporary: false, instance: 1, sealer: 'fwd.test', authenticated: 'dmarc=pass', reason: 'arc=pass i=1 sealer=fwd.test (dmarc=pass)', ...o })
  const relaxedSpf = { result: 'pass', domain: 'bounce.allowed.test' } as SpfFact

  it("DMARC pass: the record's own alignment decides, also against a strict receiver", () => {
    const f = dataFacts({ spf: relaxedSpf, from: 'a@allowed.test', dmarc: dmarc('pass', 'spf bounce.allowed.test') }, STRICT)
    assert.deepEqual(f.aligned, ['bounce.allowed.test'])
    assert.ok(planData(f, STRICT).domainCandidates?.includes('allowed.test'))
    const d = decideData(f, { domainAllow: hit('allowed.test', 'partner') }, STRICT).message
    assert.deepEqual([d.verdict, d.rule], ['trusted', 'domain:allow'])
  })
  it('DMARC fail (strict record, relaxed-aligned SPF pass): failed authentication; nothing asked, deferred', () => {
    const f = dataFacts({ spf: relaxedSpf, from: 'a@allowed.test', dmarc: dmarc('fail') })
    assert.deepEqual(f.aligned, [])
    assert.deepEqual(planData(f, CFG), {})
    const d = decideData(f, {}, CFG).message
    assert.deepEqual([d.verdict, d.rule], ['defer', 'auth-fail'])
    assert.match(d.reason, /^failed authentication \(dmarc=fail header\.from=allowed\.test\)/)
  })
  it('DMARC fail whatever p= says, and temperror: deferred, never accepted', () => {
    for (const o of [dmarc('fail', null, 'none'), dmarc('fail', null, 'quarantine'), dmarc('temperror', null, null)]) {
      const f = dataFacts({ spf: relaxedSpf, dkim: ['allowed.test'], from: 'a@allowed.test', dmarc: o })
      const d = decideData(f, { domainAllow: hit('allowed.test') }, CFG).message
      assert.deepEqual([d.verdict, d.rule], ['defer', 'auth-fail'], `${o.result} p=${o.policy}`)
    }
  })
  it("DMARC none and permerror: the receiver's alignment key decides", () => {
    for (const o of [dmarc('none', null, null), dmarc('permerror', null, null)]) {
      assert.deepEqual(dataFacts({ spf: relaxedSpf, from: 'a@allowed.test', dmarc: o }).aligned, ['bounce.allowed.test'], o.result)
      assert.deepEqual(dataFacts({ spf: relaxedSpf, from: 'a@allowed.test', dmarc: o }, STRICT).aligned, [], o.result)
    }
  })
  it('ARC of a trusted sealer: asked with the From domain; it authenticates the From and overrides the failures forwarding caused', () => {
    const f = dataFacts({ spf: { result: 'none', domain: 'fwd.test' }, from: 'a@allowed.test', dmarc: dmarc('fail'), arc: arc() })
    const req = planData(f, CFG)
    assert.deepEqual(req.arcSealers, ['fwd.test'])
    assert.ok(req.domainCandidates?.includes('allowed.test'))
    const d = decideData(f, { arcTrusted: hit('fwd.test', 'list host'), domainAllow: hit('allowed.test', 'partner') }, CFG).message
    assert.deepEqual([d.verdict, d.rule], ['trusted', 'domain:allow'])
    assert.match(d.reason, /authenticated via arc:trusted fwd\.test .*\(arc=pass i=1 sealer=fwd\.test \(dmarc=pass\)\), which overrides dmarc=fail/)
  })
  it('ARC of a sealer not in arc:trusted adds nothing: the DMARC failure stands', () => {
    const f = dataFacts({ spf: { result: 'none', domain: 'fwd.test' }, from: 'a@allowed.test', dmarc: dmarc('fail'), arc: arc() })
    const d = decideData(f, { domainAllow: hit('allowed.test', 'partner') }, CFG).message
    assert.deepEqual([d.verdict, d.rule], ['defer', 'auth-fail'])
  })
  it('a broken chain, or an ARC-A-R without a pass, is no candidate and no veto', () => {
    for (const a of [arc({ chain: 'fail', authenticated: null }), arc({ authenticated: null })]) {
      const f = dataFacts({ spf: { result: 'none', domain: 'fwd.test' }, from: 'a@allowed.test', dmarc: dmarc('none', null, null), arc: a })
      assert.deepEqual(planData(f, CFG), {}, a.reason)
      const d = decideData(f, { arcTrusted: hit('fwd.test') }, CFG).message
      assert.deepEqual([d.verdict, d.rule], ['defer', 'none'], 'not a failed authentication')
    }
  })
  it('a From already authenticated needs no ARC: no sealer asked', () => {
    const f = dataFacts({ dkim: ['allowed.test'], from: 'a@allowed.test', dmarc: dmarc('pass', 'dkim allowed.test'), arc: arc() })
    assert.equal(planData(f, CFG).arcSealers, undefined)
  })
})
