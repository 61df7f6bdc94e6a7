// mx6ctl explain: the plugin's decisions for given facts, and the "what would change it"
// suggestions, against a fake store (each suggestion is checked by deciding again).
import assert from 'node:assert/strict'
import { readReceiveConfig, type ReceiveConfig } from '../../plugins/mx6-receive/config'
import type { PeerSignals } from '../../plugins/mx6-receive/peer-signals'
import { UsageError } from '../../scripts/ctl/command'
import { explain, harakaIsPrivate, type ExplainDeps, type Explanation } from '../../scripts/ctl/explain-core'
import { OverlayStore } from '../../scripts/ctl/explain-suggest'
import { parseFacts, render } from '../../scripts/ctl/explain'
import { main } from '../../scripts/mx6ctl'
import { FakeStore } from './fake-store'

function config(ini: Record<string, Record<string, unknown>> = {}): ReceiveConfig {
  const { config, errors } = readReceiveConfig(ini)
  assert.deepEqual(errors, [])
  return config
}

const NO_SIGNALS: PeerSignals = {
  fcrdns: { outcome: 'fail', confirmed: [], detail: 'no PTR (nxdomain)' },
  asn: { outcome: 'skip', asns: [], detail: 'asn disabled' },
}

interface Harness {
  store: FakeStore
  deps: ExplainDeps
  guesses: unknown[][]
  signalCalls: string[]
}

function harness(cfg = config(), signals: PeerSignals = NO_SIGNALS, guessResult = 'pass'): Harness {
  const store = new FakeStore()
  const guesses: unknown[][] = []
  const signalCalls: string[] = []
  const deps: ExplainDeps = {
    cfg,
    store,
    peerSignals: async (ip, helo) => {
      signalCalls.push(`${ip} ${helo}`)
      return signals
    },
    evaluateGuess: async (...args) => {
      guesses.push(args)
      return guessResult
    },
    isPrivate: (ip) => ip === '::1' || ip.startsWith('fd'),
  }
  return { store, deps, guesses, signalCalls }
}

/** parseFacts on mx6ctl-style arguments, then explain. */
function run(h: Harness, ...argv: string[]): Promise<Explanation> {
  return explain(parseFacts(argv, 1_800_000_000).facts, h.deps)
}

const commands = (e: Explanation) => e.changes.map((c) => c.commands.join(' && '))

describe('mx6ctl explain: decisions', () => {
  it('an unknown IPv6 peer is deferred after DATA; the only basis to create is ip:allow', async () => {
    const h = harness()
    const e = await run(h, '--ip', '2001:DB8:7::20', '--helo', 'x.neutral.test', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test', '--spf', 'neutral')
    assert.deepEqual([e.rcpts[0].decision.verdict, e.final.verdict, e.final.rule, e.phase], ['pending', 'defer', 'none', 'data_post'])
    assert.equal(e.peer.canonical, '2001:db8:7::20')
    assert.deepEqual(commands(e), ['mx6ctl allow ip add 2001:db8:7::/64'])
    assert.equal(e.changes[0].verdict, 'trusted')
    assert.ok(e.notes.some((n) => n.startsWith('no domain rule can apply: the From domain neutral.test is not authenticated')))
    assert.ok(e.notes.some((n) => n.startsWith('no address-book entry can apply')))
    assert.deepEqual(h.signalCalls, ['2001:db8:7::20 x.neutral.test'])
    assert.match(e.result, /^deferred after DATA with 451 4\.7\.26/)
  })

  it('an IPv4 peer (also IPv4-mapped) is not acted on, with no Redis and no DNS at all', async () => {
    for (const ip of ['192.0.2.1', '::ffff:192.0.2.1']) {
      const h = harness()
      const e = await run(h, '--ip', ip, '--mail-from', 'a@fail.test', '--rcpt', 'bob@rcpt.test', '--spf', 'fail')
      assert.deepEqual([e.final.verdict, e.final.rule, e.phase], ['skip', 'ipv4', 'screen'])
      assert.deepEqual(h.store.requests, [])
      assert.deepEqual(h.signalCalls, [])
      assert.deepEqual(e.changes, [])
      assert.ok(e.notes[0].startsWith('mx6-receive does not act on IPv4 peers'))
    }
  })

  it('a private IPv6 peer is skipped while skip_private=true, and decided with skip_private=false', async () => {
    const e = await run(harness(), '--ip', '::1', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e.final.verdict, e.final.rule], ['skip', 'private'])
    const h = harness(config({ main: { skip_private: false } }))
    const e2 = await run(h, '--ip', '::1', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e2.final.verdict, e2.final.rule], ['defer', 'none'])
  })

  it('ip:allow: trusted at RCPT, nothing to change', async () => {
    const h = harness()
    h.store.ipAllow.set('2001:db8:7::100/120', 'partner')
    const e = await run(h, '--ip', '2001:db8:7::1a0', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e.rcpts[0].decision.rule, e.final.verdict, e.final.rule], ['ip:allow', 'trusted', 'ip:allow'])
    assert.deepEqual(e.changes, [])
    assert.ok(e.notes.includes('already trusted: nothing to change'))
  })

  it('an authenticated, aligned From in no list: allow domain and book entries for every recipient, each checked', async () => {
    const h = harness()
    const e = await run(h, '--ip', '2001:db8:7::32', '--mail-from', 'bounce@neutral.test', '--from', 'CEO <CEO@News.Allowed.test>', '--dkim-pass', 'allowed.test', '--spf', 'neutral', '--rcpt', 'Bob+lists@rcpt.test', '--rcpt', 'carol@rcpt.test')
    assert.deepEqual([e.final.verdict, e.final.rule], ['defer', 'none'])
    assert.deepEqual(e.alignedDomains, ['allowed.test'])
    assert.deepEqual(commands(e), [
      'mx6ctl allow ip add 2001:db8:7::/64',
      'mx6ctl allow domain add allowed.test',
      'mx6ctl book add bob@rcpt.test ceo@news.allowed.test && mx6ctl book add carol@rcpt.test ceo@news.allowed.test',
    ])
    assert.match(e.changes[1].effect, /allowed\.test has DKIM pass and is relaxed-aligned/)
    // The suggestions really work: with the entries in the store, the same facts are trusted.
    h.store.domainAllow.set('allowed.test', 'x')
    assert.equal((await run(h, '--ip', '2001:db8:7::32', '--mail-from', 'bounce@neutral.test', '--from', 'ceo@news.allowed.test', '--dkim-pass', 'allowed.test', '--rcpt', 'bob@rcpt.test')).final.rule, 'domain:allow')
  })

  it('book suggestions only for the recipients that need one', async () => {
    const h = harness()
    h.store.books.set('bob@rcpt.test', new Set(['friend@other.test']))
    const e = await run(h, '--ip', '2001:db8:7::40', '--mail-from', 'friend@other.test', '--spf', 'pass', '--rcpt', 'bob@rcpt.test', '--rcpt', 'carol@rcpt.test')
    assert.deepEqual(e.rcpts.map((r) => r.decision.rule), ['book', 'none'])
    assert.equal(e.final.verdict, 'defer')
    assert.match(e.final.reason, /^1 of 2 recipients without basis/)
    assert.ok(commands(e).includes('mx6ctl book add carol@rcpt.test friend@other.test'))
    assert.ok(commands(e).includes('mx6ctl allow domain add other.test'))
  })

  it('a spoofed From: no domain suggestion, and the note says the SPF domain is not aligned', async () => {
    const h = harness()
    h.store.domainAllow.set('allowed.test', 'partner')
    const e = await run(h, '--ip', '2001:db8:7::34', '--mail-from', 'x@other.test', '--from', 'ceo@allowed.test', '--spf', 'pass', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e.final.verdict, e.final.rule], ['defer', 'none'])
    assert.ok(!commands(e).some((c) => c.includes('allow domain')))
    const note = e.notes.find((n) => n.startsWith('no domain rule can apply'))
    assert.match(note ?? '', /From domain allowed\.test is not authenticated: it needs a DKIM pass for a domain with the same organizational domain allowed\.test \(have: dkim pass=none\), or an SPF pass for an aligned MAIL FROM domain \(have: spf=pass other\.test, not aligned with allowed\.test\)/)
  })

  it('no usable From: says which rules are left', async () => {
    const e = await run(harness(), '--ip', '2001:db8:7::35', '--mail-from', 'a@other.test', '--from', 'a@x.test, b@y.test', '--spf', 'pass', '--rcpt', 'bob@rcpt.test')
    assert.equal(e.from, 'no usable From (2 From mailboxes)')
    assert.ok(e.notes.some((n) => n.startsWith('no usable From (2 From mailboxes): no domain or From-address rule can apply')))
    // The envelope book at RCPT still works, and is suggested.
    assert.ok(commands(e).includes('mx6ctl book add bob@rcpt.test a@other.test'))
  })

  it('undecided=defer: deferred at RCPT; a DKIM-only domain would not help, and the note says why', async () => {
    const h = harness(config({ main: { undecided: 'defer' } }))
    const e = await run(h, '--ip', '2001:db8:7::32', '--mail-from', 'bounce@neutral.test', '--from', 'ceo@allowed.test', '--dkim-pass', 'allowed.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e.final.verdict, e.phase, e.data], ['defer', 'rcpt', null])
    assert.ok(!commands(e).includes('mx6ctl allow domain add allowed.test'))
    assert.ok(e.notes.some((n) => n.includes('with undecided=defer only an SPF-authenticated MAIL FROM domain counts at RCPT')), e.notes.join('\n'))
    assert.ok(e.notes.includes('every recipient was deferred at RCPT, so the message body is never sent over IPv6'))
  })

  it('MX6 listener: the fallback verdict, only for a configured listener address (and port)', async () => {
    const cfg = config({ mx6: { listeners: '2001:db8:25::6, [2001:db8:25::7]:2525' } })
    const base = ['--ip', '2001:db8:7::21', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test']
    assert.equal((await run(harness(cfg), ...base, '--listener', '2001:DB8:25::6')).final.verdict, 'fallback')
    assert.equal((await run(harness(cfg), ...base, '--listener', '[2001:db8:25::6]:587')).final.verdict, 'fallback')
    assert.equal((await run(harness(cfg), ...base, '--listener', '[2001:db8:25::7]:2525')).final.verdict, 'fallback')
    assert.equal((await run(harness(cfg), ...base, '--listener', '2001:db8:25::7')).final.verdict, 'defer', 'port 25 is not the listener port')
    const plain = await run(harness(cfg), ...base)
    assert.equal(plain.final.verdict, 'defer')
    assert.ok(plain.notes.some((n) => n.startsWith('not an MX6 session (give --listener')))
    assert.match((await run(harness(cfg), ...base, '--listener', '2001:db8:25::6')).result, /^MX6 fallback 550 5\.5\.7 after DATA/)
  })

  it('Redis trouble: deferred with store-error, no suggestions', async () => {
    const h = harness()
    h.store.failWith = FakeStore.wrongType()
    const e = await run(h, '--ip', '2001:db8:7::20', '--mail-from', 'a@allowed.test', '--spf', 'pass', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e.final.verdict, e.final.rule], ['defer', 'store-error'])
    assert.equal(e.changes.length, 0)
    assert.match(e.storeErrors[0], /WRONGTYPE/)
  })

  it('greenlisting: FCrDNS green is shown, HELO mismatch and host:green are pointed out', async () => {
    const confirmed: PeerSignals = { fcrdns: { outcome: 'pass', confirmed: ['client.other.test'], detail: 'forward-confirmed client.other.test matches HELO' }, asn: NO_SIGNALS.asn }
    const off = await run(harness(config(), confirmed), '--ip', '2001:db8:7::10', '--helo', 'client.other.test', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([off.final.verdict, off.final.rule], ['defer', 'none'], 'fcrdns is opt-in')
    const g = await run(harness(config({ green: { fcrdns: true } }), confirmed), '--ip', '2001:db8:7::10', '--helo', 'client.other.test', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([g.final.verdict, g.final.rule], ['green', 'fcrdns'])
    assert.deepEqual(commands(g), ['mx6ctl allow ip add 2001:db8:7::/64'], 'trusted instead of green: only the checked ones')
    const mismatch: PeerSignals = { fcrdns: { outcome: 'fail', confirmed: ['client.other.test'], detail: 'forward-confirmed client.other.test but HELO "x.test" differs' }, asn: NO_SIGNALS.asn }
    const d = await run(harness(config({ green: { fcrdns: true } }), mismatch), '--ip', '2001:db8:7::10', '--helo', 'x.test', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.equal(d.final.verdict, 'defer')
    assert.ok(d.notes.some((n) => n.endsWith('with HELO client.other.test the fcrdns green rule would apply')))
    const host = d.changes.find((c) => c.commands[0] === 'mx6ctl green host add client.other.test')
    assert.equal(host?.verdict, 'green')
  })

  it('failed authentication: FCrDNS does not count, explain says why, with the reply text; --dkim-fail is a failure too', async () => {
    const confirmed: PeerSignals = { fcrdns: { outcome: 'pass', confirmed: ['client.other.test'], detail: 'forward-confirmed client.other.test matches HELO' }, asn: NO_SIGNALS.asn }
    const cfg = config({ green: { fcrdns: true } })
    const e = await run(harness(cfg, confirmed), '--ip', '2001:db8:7::10', '--helo', 'client.other.test', '--mail-from', 'a@fail.test', '--rcpt', 'bob@rcpt.test', '--spf', 'fail')
    assert.deepEqual([e.final.verdict, e.final.rule], ['defer', 'auth-fail'])
    assert.equal(e.authFailure, 'spf=fail fail.test')
    assert.match(e.final.reason, /fcrdns does not count with failed authentication/)
    assert.match(e.result, /^deferred after DATA with 451 4\.7\.26 "Authentication failed \(SPF, DKIM or DMARC\)/)
    assert.ok(render(e).includes('auth:      failed (spf=fail fail.test): no automatic signal counts; only an operator\'s list entry can accept'))
    const host = e.changes.find((c) => c.commands[0] === 'mx6ctl green host add client.other.test')
    assert.equal(host?.verdict, 'green', 'the operator entry that would override it is suggested, checked')
    const d = await run(harness(cfg, confirmed), '--ip', '2001:db8:7::10', '--helo', 'client.other.test', '--mail-from', 'a@other.test', '--spf', 'pass', '--dkim-fail', 'other.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([d.final.verdict, d.final.rule, d.authFailure], ['defer', 'auth-fail', 'dkim=fail d=other.test for From other.test'])
  })

  it('mode=observe: the decision the plugin records (would-defer), and that the mail is accepted all the same', async () => {
    const e = await run(harness(config({ main: { mode: 'observe', undecided: 'defer' } })), '--ip', '2001:db8:7::20', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test', '--spf', 'neutral')
    assert.equal(e.rcpts[0].decision.verdict, 'would-defer')
    assert.deepEqual([e.final.verdict, e.phase], ['would-defer', 'data_post'], 'the recipient is not refused, so DATA follows')
    assert.match(e.result, /^mode=observe: would-defer \(none\), recorded only; the message is accepted/)
  })

  it('asn:green suggestion when the origin AS is known and asn=true', async () => {
    const sig: PeerSignals = { fcrdns: NO_SIGNALS.fcrdns, asn: { outcome: 'pass', asns: ['64500'], detail: 'origin AS 64500' } }
    const e = await run(harness(config({ green: { asn: true } }), sig), '--ip', '2001:db8:7::42', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test')
    assert.ok(commands(e).includes('mx6ctl green asn add 64500'))
  })

  it('last-resort SPF: evaluated like mx6_mail only for SPF "none", and the guess authenticates', async () => {
    const h = harness()
    h.store.spfGuesses.set('nospf.test', 'v=spf1 ip6:2001:db8:7::/64 -all')
    h.store.domainAllow.set('nospf.test', 'partner')
    const e = await run(h, '--ip', '2001:db8:7::44', '--helo', 'x.nospf.test', '--mail-from', 'A@NoSPF.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual(h.guesses, [['2001:db8:7::44', 'nospf.test', 'a@nospf.test', 'x.nospf.test', 'v=spf1 ip6:2001:db8:7::/64 -all', 3000]])
    assert.deepEqual([e.final.verdict, e.final.rule, e.spf?.guess, e.guess?.source], ['trusted', 'domain:allow', true, 'redis'])
    // An SPF result other than none: no guess.
    const h2 = harness()
    h2.store.spfGuesses.set('nospf.test', 'v=spf1 -all')
    await run(h2, '--ip', '2001:db8:7::44', '--mail-from', 'a@nospf.test', '--spf', 'softfail', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual(h2.guesses, [])
    // The default record when Redis has none; disabled: none at all.
    const h3 = harness(config({ spf_guess: { default: 'v=spf1 a -all' } }), NO_SIGNALS, 'fail')
    const e3 = await run(h3, '--ip', '2001:db8:7::44', '--mail-from', 'a@nospf.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual([e3.guess?.source, e3.spf?.result], ['default', 'fail'])
    const h4 = harness(config({ spf_guess: { enabled: false, default: 'v=spf1 a -all' } }))
    await run(h4, '--ip', '2001:db8:7::44', '--mail-from', 'a@nospf.test', '--rcpt', 'bob@rcpt.test')
    assert.deepEqual(h4.guesses, [])
  })

  it('the null sender: no SPF fact, From from --from only', async () => {
    const e = await run(harness(), '--ip', '2001:db8:7::90', '--mail-from', '<>', '--spf', 'pass', '--rcpt', 'bob@rcpt.test')
    assert.equal(e.spf, null)
    assert.equal(e.from, 'no usable From (no From header)')
    assert.equal(e.final.verdict, 'defer')
  })

  it('no --rcpt: one recipient whose address does not matter', async () => {
    const h = harness()
    h.store.ipAllow.set('2001:db8:7::5', 'x')
    const e = await run(h, '--ip', '2001:db8:7::5')
    assert.deepEqual([e.rcpts.length, e.rcpts[0].given, e.final.rule], [1, '', 'ip:allow'])
    assert.ok(render(e).includes('rcpt (any recipient) verdict=trusted rule=ip:allow: 2001:db8:7::5 in ip:allow 2001:db8:7::5 ("x")'))
  })

  it('UTF-8 addresses: A-label domains, and the text output stays printable ASCII', async () => {
    const e = await run(harness(), '--ip', '2001:db8:7::92', '--mail-from', 'jürgen@bücher.test', '--rcpt', 'Jürgen@Bücher.test')
    assert.equal(e.rcpts[0].mailbox?.address, 'jürgen@xn--bcher-kva.test')
    for (const l of render(e)) assert.match(l, /^[\x20-\x7e]*$/)
  })

  it('renders every explanation as printable ASCII lines, the decisions as the plugin logs them', async () => {
    const e = await run(harness(), '--ip', '2001:db8:7::20', '--helo', 'x.neutral.test', '--mail-from', 'a@neutral.test', '--rcpt', 'bob@rcpt.test', '--spf', 'neutral')
    const lines = render(e)
    assert.ok(lines.includes('rcpt <bob@rcpt.test> verdict=pending rule=none: no basis at rcpt (spf=neutral neutral.test); waiting for DATA'))
    assert.ok(lines.includes('data_post verdict=defer rule=none: From a@neutral.test not relaxed-aligned with a passing SPF/DKIM domain (spf=neutral neutral.test, dkim pass=none)'))
    assert.ok(lines.includes('  mx6ctl allow ip add 2001:db8:7::/64'))
    for (const l of lines) assert.match(l, /^[\x20-\x7e]*$/)
  })
})

describe('mx6ctl explain: helpers', () => {
  it("harakaIsPrivate follows Haraka's remote.is_private", () => {
    for (const ip of ['::1', '::', 'fe80::1', 'fd00::1', 'fc12::1', '127.0.0.1', '10.1.2.3', '192.0.2.1']) assert.equal(harakaIsPrivate(ip), true, ip)
    for (const ip of ['2001:db8::1', '2a00:1450::1', '8.8.8.8']) assert.equal(harakaIsPrivate(ip), false, ip)
  })

  it('OverlayStore answers as if the entries were there, without hiding real hits', async () => {
    const store = new FakeStore()
    store.ipAllow.set('2001:db8::1', 'real')
    const o = new OverlayStore(store, { ipAllow: ['2001:db8::/64'], domainAllow: ['x.test'], books: [{ owner: 'bob@r.test', member: '@x.test' }], hostGreen: ['h.test'] })
    const r = await o.lookup({ ipCandidates: ['2001:db8::1', '2001:db8::/64'], domainCandidates: ['a.x.test', 'x.test'], books: [{ owner: 'bob@r.test', members: ['a@x.test', '@x.test'] }], hostGreenCandidates: ['h.test'] })
    assert.deepEqual(r.ipAllow, { entry: '2001:db8::1', note: 'real' })
    assert.equal(r.domainAllow?.entry, 'x.test')
    assert.deepEqual(r.books, ['@x.test'])
    assert.equal(r.hostGreen?.entry, 'h.test')
  })
})

describe('mx6ctl explain: odd input is a usage error, never a crash', () => {
  const bad: Array<[string, string[]]> = [
    ['no --ip', []],
    ['bad ip', ['--ip', 'nonsense']],
    ['CIDR ip', ['--ip', '2001:db8::/64']],
    ['empty ip', ['--ip', '']],
    ['control chars in helo', ['--ip', '2001:db8::1', '--helo', 'a\r\nb']],
    ['bad mail-from', ['--ip', '2001:db8::1', '--mail-from', 'not an address']],
    ['control chars in mail-from', ['--ip', '2001:db8::1', '--mail-from', 'a\u0000@b.test']],
    ['null rcpt', ['--ip', '2001:db8::1', '--rcpt', '<>']],
    ['bad rcpt', ['--ip', '2001:db8::1', '--rcpt', '@@']],
    ['bad spf', ['--ip', '2001:db8::1', '--spf', 'maybe']],
    ['bad dkim domain', ['--ip', '2001:db8::1', '--dkim-pass', 'a.test,not a domain']],
    ['bad listener', ['--ip', '2001:db8::1', '--listener', '[2001:db8::6]:99999']],
    ['listener garbage', ['--ip', '2001:db8::1', '--listener', 'mx.example']],
    ['unknown option', ['--ip', '2001:db8::1', '--frob']],
    ['stray argument', ['--ip', '2001:db8::1', 'extra']],
    ['missing message file', ['--ip', '2001:db8::1', '--message', '/nonexistent/message.eml']],
    ['message is a directory', ['--ip', '2001:db8::1', '--message', '.']],
  ]
  for (const [what, argv] of bad) {
    it(what, () => assert.throws(() => parseFacts(argv), UsageError))
  }

  it('through main: exit 2 with one line pointing at the help, before any connection', async () => {
    const err: string[] = []
    const code = await main(['explain', '--ip', 'x'], { out: () => undefined, err: (t) => void err.push(t) })
    assert.equal(code, 2)
    assert.deepEqual(err, ['mx6ctl explain: --ip "x": not an IP address; see `mx6ctl explain --help`'])
  })

  it('random junk in every option: a UsageError or an explanation, nothing else', async () => {
    let seed = 7
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const alphabet = ['a', '@', '.', ':', '<', '>', ' ', ',', '"', '\\', '[', ']', '/', '%', 'ü', '\u0000', '\r', '\n', '1', 'f', '+', '-']
    const junk = () => Array.from({ length: Math.floor(rnd() * 12) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('')
    const opts = ['--helo', '--mail-from', '--rcpt', '--from', '--dkim-pass', '--spf', '--listener']
    for (let i = 0; i < 300; i++) {
      const argv = ['--ip', rnd() < 0.5 ? '2001:db8:7::20' : junk()]
      for (const o of opts) if (rnd() < 0.6) argv.push(o, rnd() < 0.3 ? junk() : o === '--spf' ? 'pass' : o === '--listener' ? '2001:db8::6' : o === '--dkim-pass' ? 'a.test' : o === '--helo' ? 'h.test' : 'a@b.test')
      let facts
      try {
        facts = parseFacts(argv).facts
      } catch (err) {
        assert.ok(err instanceof UsageError, `${JSON.stringify(argv)}: ${(err as Error).stack}`)
        continue
      }
      const e = await explain(facts, harness().deps)
      for (const l of render(e)) assert.match(l, /^[\x20-\x7e]*$/, JSON.stringify(argv))
      JSON.stringify(e)
    }
  })
})
