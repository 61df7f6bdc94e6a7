// The trust model: failed authentication vetoes every automatic signal; only an operator's
// own list entry overrides it, and says so. Pure core first, then the plugin glue (observe
// mode, the two deferral texts).
import assert from 'node:assert/strict'
import { Address } from '@haraka/email-address'
import * as fixtures from 'haraka-test-fixtures'
import { CachingResolver } from '../../plugins/lib/dns'
import { normaliseMailbox, type Mailbox } from '../../plugins/lib/mailbox'
import { AUTH_DEFAULTS, dkimFailure, spfFailure, type SpfVeto } from '../../plugins/mx6-receive/auth'
import { decideData, decideRcpt, planData, planRcpt, rememberAnswers, type Decision, type Known, type PolicyConfig, type SpfFact } from '../../plugins/mx6-receive/decide'
import { GREEN_DEFAULTS, peerGreen } from '../../plugins/mx6-receive/green'
import type { PeerSignals } from '../../plugins/mx6-receive/peer-signals'
import { FakeStore } from './fake-store'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any
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
    const cfg = { spfVeto: ['fail', 'neutral'] as SpfVeto[] }
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

const CFG: PolicyConfig = { skipPrivate: true, undecided: 'wait', alignment: 'relaxed', green: { ...GREEN_DEFAULTS, fcrdns: true, asn: true }, auth: AUTH_DEFAULTS }
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
}

/** RCPT, then (unless deferred there) DATA, as the hooks run the core: "verdict/rule", and the override. */
async function decide(signal: string, outcome: string, cfg = CFG): Promise<{ final: Decision; text: string }> {
  const store = new FakeStore()
  const signals = SIGNALS[signal](store)
  const o = OUTCOMES[outcome]
  const rcpt = { ipv6: IP, mx6: false, spf: o.spf, mailFrom: box('a@sender.test'), rcpt: box('bob@rcpt.test'), peerSignals: signals, now: NOW }
  const known: Known = {}
  const reply = await store.lookup(planRcpt(rcpt, known, cfg))
  rememberAnswers(known, reply)
  const answers = { ...known, ...reply }
  const prior = decideRcpt(rcpt, answers, cfg)
  let final = prior
  if (prior.verdict !== 'defer') {
    const facts = { mx6: false, peerGreen: peerGreen(IP, signals, answers, cfg.green), now: NOW, spf: o.spf, dkimPass: o.dkimPass, dkimFail: o.dkimFail, from: { mailbox: box('a@sender.test') }, recipients: [{ rcpt: box('bob@rcpt.test'), prior }] }
    final = decideData(facts, await store.lookup(planData(facts, cfg)), cfg).message
  }
  return { final, text: `${final.verdict}/${final.rule}` }
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
    const cfg = { ...CFG, auth: { spfVeto: ['fail', 'temperror', 'permerror'] as SpfVeto[] } }
    assert.equal((await decide('fcrdns', 'softfail', cfg)).text, 'green/fcrdns')
    assert.equal((await decide('fcrdns', 'fail', cfg)).text, 'defer/auth-fail')
  })

  it('undecided=defer: an SPF failure defers at RCPT with the auth-fail rule, an automatic signal notwithstanding', async () => {
    const cfg = { ...CFG, undecided: 'defer' as const }
    assert.equal((await decide('fcrdns', 'fail', cfg)).text, 'defer/auth-fail')
    assert.equal((await decide('nothing', 'neutral', cfg)).text, 'defer/none')
    assert.equal((await decide('ip:green', 'fail', cfg)).text, 'green/ip:green')
  })

  it('a last-resort SPF guess authenticates only while nothing failed: a failing From-domain DKIM signature vetoes it', () => {
    const guess: SpfFact = { result: 'pass', domain: 'sender.test', guess: true }
    const facts = (dkimFail: string[]) => ({
      mx6: false,
      peerGreen: null,
      now: NOW,
      spf: guess,
      dkimPass: [],
      dkimFail,
      from: { mailbox: box('a@sender.test') },
      recipients: [{ rcpt: box('bob@rcpt.test'), prior: { verdict: 'pending', rule: 'none', final: false, reason: '' } as Decision }],
    })
    const listed = { domainAllow: { entry: 'sender.test', note: '' }, books: [null] }
    assert.equal(decideData(facts([]), listed, CFG).message.verdict, 'trusted')
    const vetoed = decideData(facts(['sender.test']), listed, CFG).message
    assert.equal(`${vetoed.verdict}/${vetoed.rule}`, 'defer/auth-fail')
    // A guessed book match at RCPT waits for DATA, where the same veto applies.
    const rcpt = decideRcpt({ ipv6: IP, mx6: false, spf: guess, mailFrom: box('a@sender.test'), rcpt: box('bob@rcpt.test'), now: NOW }, { ipAllow: null, books: ['a@sender.test'] }, CFG)
    assert.deepEqual([rcpt.verdict, rcpt.rule, rcpt.final], ['trusted', 'book', false])
  })
})

const DENYSOFT = 903
const OK = 906
const replyText = (msg: Any) => (msg && typeof msg === 'object' ? `${msg.code} ${msg.reply}` : String(msg))

function setup(ip: string, mailFrom: string, ini: Record<string, Record<string, string>> = {}) {
  const plugin: Any = fixtures.makePlugin('mx6-receive', { register: false })
  const get = plugin.config.get.bind(plugin.config)
  plugin.config.get = (name: string, ...rest: unknown[]) => (name === 'mx6-receive.ini' ? ini : get(name, ...rest))
  plugin.register()
  const store = new FakeStore()
  plugin.store = store
  plugin.resolver = new CachingResolver({ query: async () => ({ rcode: 3, answers: [], authorities: [] }) }, { negativeTtl: 0, maxTtl: 0 })
  const conn: Any = fixtures.makeConnection({ ip, mailFrom })
  conn.remote.is_private = false
  conn.hooks_to_run = [['spamassassin', 'hook_data_post']]
  const lines: string[] = []
  conn.loginfo = (_p: unknown, line: unknown) => lines.push(String(line))
  return { plugin, store, conn, lines }
}

const setSpf = (conn: Any, result: string, domain: string) => conn.transaction.results.add({ name: 'spf' }, { scope: 'mfrom', result, domain })

async function sendData(plugin: Any, conn: Any, from: string, rcpts = ['bob@rcpt.test']) {
  conn.transaction.rcpt_to = rcpts.map((r) => new Address(`<${r}>`))
  conn.transaction.header.add('From', from)
  return fixtures.callDataPost(plugin, conn)
}

describe('trust: the plugin glue', () => {
  it('failed authentication gets its own deferral text; an address-book miss gets the same text as any unlisted mail', async () => {
    const failed = setup(IP, 'a@fail.test', { main: { undecided: 'defer' } })
    setSpf(failed.conn, 'Fail', 'fail.test')
    const f = await fixtures.callRcpt(failed.plugin, failed.conn, 'bob@rcpt.test')
    assert.equal(f.rc, DENYSOFT)
    assert.equal(replyText(f.msg), '451 4.7.26 Authentication failed (SPF, DKIM or DMARC): not accepted over IPv6; please deliver via our IPv4 MX')
    assert.deepEqual(failed.store.counted, ['rcpt.defer.auth-fail'])

    const texts = new Set<string>()
    for (const inBook of [true, false]) {
      const { plugin, store, conn } = setup(IP, 'friend@other.test', { main: { undecided: 'defer' } })
      setSpf(conn, 'Pass', 'other.test')
      store.books.set('bob@rcpt.test', new Set(inBook ? ['someone@else.test'] : []))
      const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      texts.add(replyText(r.msg))
    }
    const unknown = setup('2001:db8:7::11', 'x@neutral.test', { main: { undecided: 'defer' } })
    setSpf(unknown.conn, 'Neutral', 'neutral.test')
    texts.add(replyText((await fixtures.callRcpt(unknown.plugin, unknown.conn, 'bob@rcpt.test')).msg))
    assert.deepEqual([...texts], ['451 4.7.26 Not accepted over IPv6 from this host; please deliver via our IPv4 MX'])
  })

  it('the two texts come from [defer] text and auth_fail_text', async () => {
    const { plugin, conn } = setup(IP, 'a@fail.test', { main: { undecided: 'defer' }, defer: { auth_fail_text: 'SPF says no: use IPv4' } })
    setSpf(conn, 'SoftFail', 'fail.test')
    assert.equal(replyText((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).msg), '451 4.7.26 SPF says no: use IPv4')
  })

  it('an allow-listed peer with a failing SPF: accepted, and the log line and results say what was overridden by which entry', async () => {
    const { plugin, store, conn, lines } = setup(IP, 'a@fail.test')
    store.ipAllow.set('2001:db8:7::/64', 'partner relay')
    setSpf(conn, 'Fail', 'fail.test')
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    const res = conn.transaction.results.get('mx6-receive')
    assert.equal(res.override, 'spf=fail fail.test overridden by operator entry ip:allow 2001:db8:7::/64')
    assert.match(lines.join('\n'), /verdict=trusted rule=ip:allow: .*; spf=fail fail\.test overridden by operator entry ip:allow 2001:db8:7::\/64/)
  })

  it('a basis settled at RCPT (the address book) is taken away after DATA by a failing DKIM signature of the From domain', async () => {
    const { plugin, store, conn } = setup(IP, 'friend@other.test')
    setSpf(conn, 'Pass', 'other.test')
    store.books.set('bob@rcpt.test', new Set(['friend@other.test']))
    await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'book')
    conn.transaction.results.add({ name: 'dkim' }, { fail: 'other.test' })
    const d = await sendData(plugin, conn, 'friend@other.test')
    assert.equal(d.rc, DENYSOFT)
    assert.match(replyText(d.msg), /^451 4\.7\.26 Authentication failed/)
    const res = conn.transaction.results.get('mx6-receive')
    assert.equal(`${res.verdict}/${res.rule}`, 'defer/auth-fail')
    assert.match(res.reason, /dkim=fail d=other\.test for From other\.test/)
  })

  describe('mode=observe', () => {
    it('an unknown IPv6 peer is accepted; the log line, results and counters say would-defer; the attempt is recorded as such', async () => {
      const { plugin, store, conn, lines } = setup(IP, 'a@neutral.test', { main: { mode: 'observe', undecided: 'defer' } })
      setSpf(conn, 'Neutral', 'neutral.test')
      const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      assert.equal(r.rc, undefined, 'nothing deferred')
      assert.equal(conn.transaction.results.get('mx6-receive').verdict, 'would-defer')
      assert.deepEqual(conn.transaction.results.get('mx6-receive').msg, ['rcpt:none'], 'a message, not a failure for other plugins')
      assert.match(lines.join('\n'), /rcpt <bob@rcpt\.test> verdict=would-defer rule=none: no basis at rcpt/)
      const d = await sendData(plugin, conn, 'a@neutral.test')
      assert.equal(d.rc, undefined)
      assert.deepEqual(store.counted, ['rcpt.would-defer.none', 'data_post.would-defer.none'])
      assert.equal(store.attempts.length, 1, 'one follow-up record for the message')
      assert.equal(store.attempts[0].fields.verdict, 'would-defer')
    })

    it('the decision after DATA is recorded as would-defer (would-fallback on an MX6 listener), and the message passes', async () => {
      for (const [ini, want] of [
        [{ main: { mode: 'observe' } }, 'would-defer'],
        [{ main: { mode: 'observe' }, mx6: { listeners: '2001:db8:25::6' } }, 'would-fallback'],
      ] as const) {
        const { plugin, store, conn, lines } = setup(IP, 'a@fail.test', ini)
        conn.local.ip = '2001:db8:25::6'
        setSpf(conn, 'Fail', 'fail.test')
        assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
        const d = await sendData(plugin, conn, 'a@fail.test')
        assert.equal(d.rc, undefined, want)
        const res = conn.transaction.results.get('mx6-receive')
        assert.equal(`${res.verdict}/${res.rule}`, `${want}/auth-fail`)
        assert.match(lines.join('\n'), new RegExp(`data_post verdict=${want} rule=auth-fail: failed authentication \\(spf=fail fail\\.test\\)`))
        assert.equal(store.attempts[0]?.fields.verdict, want)
      }
    })

    it('trusted mail still goes through the content filters (CONT, not OK)', async () => {
      const enforce = setup(IP, 'a@neutral.test')
      enforce.store.ipAllow.set(IP, '')
      await fixtures.callRcpt(enforce.plugin, enforce.conn, 'bob@rcpt.test')
      assert.equal((await sendData(enforce.plugin, enforce.conn, 'a@neutral.test')).rc, OK)
      const observe = setup(IP, 'a@neutral.test', { main: { mode: 'observe' } })
      observe.store.ipAllow.set(IP, '')
      await fixtures.callRcpt(observe.plugin, observe.conn, 'bob@rcpt.test')
      assert.equal((await sendData(observe.plugin, observe.conn, 'a@neutral.test')).rc, undefined)
      assert.equal(observe.conn.transaction.results.get('mx6-receive').verdict, 'trusted')
    })

    it('Redis trouble and a decision that throws leave the mail alone too', async () => {
      const { plugin, store, conn } = setup(IP, 'a@neutral.test', { main: { mode: 'observe', undecided: 'defer' } })
      store.failWith = new Error('WRONGTYPE')
      assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
      assert.equal(`${conn.transaction.results.get('mx6-receive').verdict}/${conn.transaction.results.get('mx6-receive').rule}`, 'would-defer/store-error')
      const thrower = setup(IP, 'a@neutral.test', { main: { mode: 'observe' } })
      thrower.store.cachedPeer = () => {
        throw new Error('boom')
      }
      const errors: string[] = []
      thrower.conn.logerror = (_p: unknown, line: unknown) => errors.push(String(line))
      assert.equal((await fixtures.callRcpt(thrower.plugin, thrower.conn, 'bob@rcpt.test')).rc, undefined)
      assert.match(errors.join('\n'), /rcpt decision failed \(mode=observe: would-defer, mail left alone\): Error: boom/)
    })
  })
})
