// The trust model: failed authentication vetoes every automatic signal; only an operator's
// own list entry overrides it, and says so.
import assert from 'node:assert/strict'
import { normaliseMailbox, type Mailbox } from '../../../plugins/lib/mailbox'
import { AUTH_DEFAULTS, dkimFailure, spfFailure, type SpfVeto } from '../../../plugins/mx6-receive/auth'
import { readReceiveConfig, type ReceiveConfig } from '../../../plugins/mx6-receive/config'
import { decideRcpt, type Decision, type SpfFact } from '../../../plugins/mx6-receive/decide'
import { authenticatedDomains, decideData } from '../../../plugins/mx6-receive/decide-data'
import { Session } from '../../../plugins/mx6-receive/session'
import type { PeerSignals } from '../../../plugins/mx6-receive/peer-signals'
import type { ZoneResult } from '../../../plugins/mx6-receive/reputation'
import { FakeStore } from '../fake-store'

const box = (a: string): Mailbox => normaliseMailbox(a.split('@')[0], a.split('@')[1], '+')!
const IP = '2001:db8:7::10'
const NOW = 1_800_000_000

describe('trust: what counts as failed authentication', () => {
  const spf = (result: string): SpfFact => ({ result, domain: 'sender.test' })
  for (const [result, want] of [
    ['pass', null],
    ['fail', 'spf=fail sender.test'],
    ['softfail', 'spf=softfail sender.test'],
    ['neutral', null],
    ['none', null],
    ['temperror', 'spf=temperror sender.test'],
    ['permerror', 'spf=permerror sender.test'],
  ] as const) {
    it(`SPF ${result} -> ${want ?? 'no failure'}`, () => assert.equal(spfFailure(spf(result), AUTH_DEFAULTS), want))
  }
  it('spf_veto decides which SPF results fail: softfail can be let off, neutral made to count', () => {
    const cfg = { ...AUTH_DEFAULTS, spfVeto: ['fail', 'neutral'] as SpfVeto[] }
    assert.equal(spfFailure(spf('softfail'), cfg), null)
    assert.equal(spfFailure(spf('neutral'), cfg), 'spf=neutral sender.test')
    assert.equal(spfFailure({ result: 'fail', domain: 'x.test', guess: true }, AUTH_DEFAULTS), 'spf=fail x.test (last-resort guess)')
    assert.equal(spfFailure(null, AUTH_DEFAULTS), null, 'null sender: no MAIL FROM result')
  })
  const dkimRows: Array<[string, string[], string[], 'relaxed' | 'strict', string | null]> = [
    ['the From domain fails, nothing passes', [], ['sender.test'], 'relaxed', 'dkim=fail d=sender.test for From sender.test'],
    ['a relaxed-aligned subdomain fails', [], ['mail.sender.test'], 'relaxed', 'dkim=fail d=mail.sender.test for From sender.test'],
    ['... not aligned under strict', [], ['mail.sender.test'], 'strict', null],
    ['the From domain fails, another of its signatures passes', ['sender.test'], ['sender.test'], 'relaxed', null],
    ['the From domain fails, another domain passes', ['list.test'], ['sender.test'], 'relaxed', 'dkim=fail d=sender.test for From sender.test'],
    ['another domain fails', [], ['list.test'], 'relaxed', null],
    ['another domain passes, nothing fails', ['list.test'], [], 'relaxed', null],
  ]
  for (const [name, pass, fail, mode, want] of dkimRows) {
    it(`DKIM: ${name} -> ${want ?? 'no failure'}`, () => assert.equal(dkimFailure('sender.test', pass, fail, mode), want))
  }
})

/** One outcome of authentication for a message from a@sender.test (MAIL FROM and From). */
interface Outcome {
  spf: SpfFact | null
  dkimPass: string[]
  dkimFail: string[]
}
const OUTCOMES: Record<string, Outcome> = {
  // Without SPF pass, the From domain is DKIM-authenticated, so that the domain rules can show
  // whether a failure vetoes them.
  pass: { spf: { result: 'pass', domain: 'sender.test' }, dkimPass: [], dkimFail: [] },
  fail: { spf: { result: 'fail', domain: 'sender.test' }, dkimPass: ['sender.test'], dkimFail: [] },
  softfail: { spf: { result: 'softfail', domain: 'sender.test' }, dkimPass: ['sender.test'], dkimFail: [] },
  neutral: { spf: { result: 'neutral', domain: 'sender.test' }, dkimPass: ['sender.test'], dkimFail: [] },
  none: { spf: { result: 'none', domain: 'sender.test' }, dkimPass: ['sender.test'], dkimFail: [] },
  temperror: { spf: { result: 'temperror', domain: 'sender.test' }, dkimPass: ['sender.test'], dkimFail: [] },
  permerror: { spf: { result: 'permerror', domain: 'sender.test' }, dkimPass: ['sender.test'], dkimFail: [] },
  // SPF passes (aligned), the From domain's own DKIM signature fails.
  'dkim-fail': { spf: { result: 'pass', domain: 'sender.test' }, dkimPass: [], dkimFail: ['sender.test'] },
  // A list's signature passes; nothing authenticates the From domain, nothing failed.
  'dkim-other': { spf: { result: 'none', domain: 'sender.test' }, dkimPass: ['list.test'], dkimFail: [] },
}

const CFG: ReceiveConfig = readReceiveConfig({ green: { fcrdns: 'true', asn: 'true' } }).config
const POLICY = CFG.policy
const NO_SIGNALS: PeerSignals = { fcrdns: { outcome: 'fail', confirmed: [], detail: 'no PTR' }, asn: { outcome: 'fail', asns: [], detail: 'no origin AS' } }

/** What each signal puts in the store and the peer's DNS signals. */
const SIGNALS: Record<string, (s: FakeStore) => PeerSignals> = {
  nothing: () => NO_SIGNALS,
  'ip:allow': (s) => (s.ipAllow.set('2001:db8:7::/64', 'partner'), NO_SIGNALS),
  'ip:green': (s) => (s.ipGreen.set(IP, 'never retries'), NO_SIGNALS),
  'host:green': (s) => (s.hostGreen.set('fwd.test', 'forwarder'), { ...NO_SIGNALS, fcrdns: { outcome: 'pass', confirmed: ['out.fwd.test'], detail: 'forward-confirmed out.fwd.test matches HELO' } }),
  fcrdns: () => ({ ...NO_SIGNALS, fcrdns: { outcome: 'pass', confirmed: ['client.sender.test'], detail: 'forward-confirmed client.sender.test matches HELO' } }),
  'asn:green': (s) => (s.asnGreen.set('64500', 'strict'), { ...NO_SIGNALS, asn: { outcome: 'pass', asns: ['64500'], detail: 'origin AS 64500' } }),
  history: (s) => (s.history.set('sender.test', { domain: 'sender.test', count: 50, first: NOW - 200 * 86400, last: NOW - 86400 }), NO_SIGNALS),
  'domain:allow': (s) => (s.domainAllow.set('sender.test', 'partner'), NO_SIGNALS),
  'domain:green': (s) => (s.domainGreen.set('sender.test', 'partner'), NO_SIGNALS),
  book: (s) => (s.books.set('bob@rcpt.test', new Set(['a@sender.test'])), NO_SIGNALS),
  // A provider's IPv6 zone answers trusted for the peer; a provider's domain zone for sender.test.
  dnswl: () => ({ ...NO_SIGNALS, providers: [{ provider: 'prov', zone: 'list.prov.test', subject: IP, outcome: 'trusted', answers: ['127.0.10.3'] }] }),
  dwl: () => NO_SIGNALS,
}

/** The domains each message asked the providers' domain zones about (dwl only). */
const zoneQueries: string[][] = []
async function domainZones(domains: readonly string[]): Promise<ZoneResult[]> {
  zoneQueries.push([...domains])
  return domains.map((d) => ({ provider: 'prov', zone: 'dwl.prov.test', subject: d, outcome: d === 'sender.test' ? 'trusted' : 'unlisted', answers: d === 'sender.test' ? ['127.0.2.3'] : [] }))
}

/** The plugin's session for one message: RCPT, then (unless deferred there) DATA. */
async function decide(signal: string, outcome: string, cfg = CFG): Promise<{ final: Decision; text: string }> {
  const store = new FakeStore()
  const signals = SIGNALS[signal](store)
  const o = OUTCOMES[outcome]
  const session = new Session(cfg, { store, peerSignals: async () => signals, evaluateGuess: async () => 'none', now: () => NOW, domainZones: signal === 'dwl' ? domainZones : undefined }, { peer: { ip: IP, private: false, relaying: false, authenticated: false }, mx6: false, helo: 'client.sender.test', spf: o.spf, mailFrom: box('a@sender.test') })
  const key = {}
  const rcpt = await session.rcpt(key, 'bob@rcpt.test', box('bob@rcpt.test'))
  if (rcpt.decision.verdict === 'defer') return { final: rcpt.decision, text: `${rcpt.decision.verdict}/${rcpt.decision.rule}` }
  const data = await session.data({ recipients: [{ key, id: 'bob@rcpt.test', rcpt: box('bob@rcpt.test') }], dkimPass: o.dkimPass, dkimFail: o.dkimFail, from: () => ({ mailbox: box('a@sender.test') }) })
  return { final: data.decision, text: `${data.decision.verdict}/${data.decision.rule}` }
}

describe('trust: each signal x each authentication outcome (the README matrix)', () => {
  const order = ['pass', 'neutral', 'none', 'fail', 'softfail', 'temperror', 'permerror', 'dkim-fail', 'dkim-other'] as const
  const FAILED = new Set(['fail', 'softfail', 'temperror', 'permerror', 'dkim-fail'])
  // One row per signal, in the columns' order.
  const matrix: Record<string, string[]> = {
    nothing: ['defer/none', 'defer/none', 'defer/none', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/none'],
    'ip:allow': Array(9).fill('trusted/ip:allow'),
    'ip:green': Array(9).fill('green/ip:green'),
    'host:green': Array(9).fill('green/host:green'),
    fcrdns: ['green/fcrdns', 'green/fcrdns', 'green/fcrdns', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'green/fcrdns'],
    'asn:green': ['green/asn:green', 'green/asn:green', 'green/asn:green', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'green/asn:green'],
    history: ['green/history', 'green/history', 'green/history', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/none'],
    'domain:allow': [...Array(8).fill('trusted/domain:allow'), 'defer/none'],
    'domain:green': [...Array(8).fill('green/domain:green'), 'defer/none'],
    book: ['trusted/book', 'trusted/book', 'trusted/book', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/none'],
    dnswl: ['trusted/dnswl', 'trusted/dnswl', 'trusted/dnswl', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'trusted/dnswl'],
    dwl: ['trusted/dwl', 'trusted/dwl', 'trusted/dwl', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/auth-fail', 'defer/none'],
  }
  for (const [signal, row] of Object.entries(matrix)) {
    it(`${signal}: ${order.map((o, i) => `${o} -> ${row[i]}`).join(', ')}`, async () => {
      for (const [i, outcome] of order.entries()) {
        const { final, text } = await decide(signal, outcome)
        assert.equal(text, row[i], `${signal} with ${outcome}: ${final.reason}`)
        // An accept despite a failure always says which failure which entry overrode.
        const accepted = final.verdict === 'trusted' || final.verdict === 'green'
        assert.equal(!!final.override, accepted && FAILED.has(outcome), `${signal} with ${outcome}: override ${final.override}`)
        if (final.override) assert.ok(final.reason.endsWith(final.override), final.reason)
      }
    })
  }

  it('a provider domain zone is asked about authenticated domains only', async () => {
    zoneQueries.length = 0
    await decide('dwl', 'dkim-other')
    assert.deepEqual(zoneQueries, [], 'nothing authenticates the From: no query')
    await decide('dwl', 'pass')
    assert.deepEqual(zoneQueries, [['sender.test']])
  })

  it('the override names the failure and the entry', async () => {
    const { final } = await decide('host:green', 'fail')
    assert.equal(final.override, 'spf=fail sender.test overridden by operator entry host:green fwd.test')
    const d = await decide('domain:allow', 'dkim-fail')
    assert.equal(d.final.override, 'dkim=fail d=sender.test for From sender.test overridden by operator entry domain:allow sender.test')
  })

  it('a vetoed automatic signal is named in the deferral', async () => {
    const { final } = await decide('fcrdns', 'fail')
    assert.match(final.reason, /^failed authentication \(spf=fail sender\.test\).*fcrdns does not count with failed authentication \(forward-confirmed client\.sender\.test matches HELO\)/)
  })

  it('spf_veto without softfail: a softfailing envelope keeps its automatic signals', async () => {
    const cfg = { ...CFG, policy: { ...POLICY, auth: { ...AUTH_DEFAULTS, spfVeto: ['fail', 'temperror', 'permerror'] as SpfVeto[] } } }
    assert.equal((await decide('fcrdns', 'softfail', cfg)).text, 'green/fcrdns')
    assert.equal((await decide('fcrdns', 'fail', cfg)).text, 'defer/auth-fail')
  })

  it('undecided=defer: an SPF failure defers at RCPT with the auth-fail rule, an automatic signal notwithstanding', async () => {
    const cfg = { ...CFG, policy: { ...POLICY, undecided: 'defer' as const } }
    assert.equal((await decide('fcrdns', 'fail', cfg)).text, 'defer/auth-fail')
    assert.equal((await decide('nothing', 'neutral', cfg)).text, 'defer/none')
    assert.equal((await decide('ip:green', 'fail', cfg)).text, 'green/ip:green')
  })

  it('a last-resort SPF guess authenticates only while nothing failed: a failing From-domain DKIM signature vetoes it', () => {
    const guess: SpfFact = { result: 'pass', domain: 'sender.test', guess: true }
    const facts = (dkimFail: string[]) => {
      const auth = { spf: guess, dkimPass: [], dkimFail, from: { mailbox: box('a@sender.test') } }
      const recipients = [{ rcpt: box('bob@rcpt.test'), prior: { verdict: 'pending', rule: 'none', final: false, reason: '' } as Decision }]
      return { ...auth, mx6: false, peerGreen: null, now: NOW, recipients, aligned: authenticatedDomains(auth, 'relaxed') }
    }
    const listed = { domainAllow: { entry: 'sender.test', note: '' }, books: [null] }
    assert.equal(decideData(facts([]), listed, POLICY).message.verdict, 'trusted')
    const vetoed = decideData(facts(['sender.test']), listed, POLICY).message
    assert.equal(`${vetoed.verdict}/${vetoed.rule}`, 'defer/auth-fail')
    // A guessed book match at RCPT waits for DATA, where the same veto applies.
    const rcpt = decideRcpt({ ipv6: IP, mx6: false, spf: guess, mailFrom: box('a@sender.test'), rcpt: box('bob@rcpt.test'), now: NOW }, { ipAllow: null, books: ['a@sender.test'] }, POLICY)
    assert.deepEqual([rcpt.verdict, rcpt.rule, rcpt.final], ['trusted', 'book', false])
  })
})

