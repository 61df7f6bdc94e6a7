// The Haraka glue of mx6-receive, loaded the way Haraka loads it, with a fake list store.
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { Address } from '@haraka/email-address'
import * as fixtures from 'haraka-test-fixtures'
import { CachingResolver } from '../../../plugins/lib/dns'
import { poll } from '../../support/proc'
import { FakeStore } from '../fake-store'
import { useResolver, useStore } from './fixture'

const DENYSOFT = 903
const OK = 906
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any

function setup(ip: string, mailFrom: string, opts: { relaying?: boolean; auth?: boolean; isPrivate?: boolean } = {}) {
  const plugin: Any = fixtures.makePlugin('mx6-receive')
  const store = new FakeStore()
  // No DNS in unit tests: every name is unknown (NXDOMAIN), as far as the peer signals ask.
  useStore(plugin, store)
  const conn: Any = fixtures.makeConnection({ ip, mailFrom, relaying: !!opts.relaying })
  if (opts.auth) conn.notes.auth_user = 'alice'
  conn.remote.is_private = !!opts.isPrivate
  // As in a real setup: a content filter's data_post hook runs after mx6-receive's.
  conn.hooks_to_run = [['spamassassin', 'hook_data_post']]
  return { plugin, store, conn }
}

function setSpf(conn: Any, result: string, domain: string) {
  conn.transaction.results.add({ name: 'spf' }, { scope: 'mfrom', result, domain })
}

function setHeaderFrom(conn: Any, from: string) {
  conn.transaction.header.add('From', from)
}

const replyText = (msg: Any) => (msg && typeof msg === 'object' ? `${msg.code} ${msg.reply}` : String(msg))

describe('mx6-receive plugin glue', () => {
  it('registers rcpt and data_post hooks and loads the shipped defaults', () => {
    const { plugin } = setup('2001:db8:7::10', 'a@x.test')
    assert.deepEqual(Object.keys(plugin.hooks).sort(), ['data_post', 'rcpt'], 'no connect or MAIL hook: nothing to do there with undecided=wait')
    const deferring: Any = fixtures.makePlugin('mx6-receive', { register: false })
    const get = deferring.config.get.bind(deferring.config)
    deferring.config.get = (name: string, ...rest: unknown[]) => (name === 'mx6-receive.ini' ? { main: { undecided: 'defer' } } : get(name, ...rest))
    deferring.register()
    assert.deepEqual(Object.keys(deferring.hooks).sort(), ['connect', 'data_post', 'rcpt'], 'undecided=defer: the DNS lookups start at connect')
    assert.deepEqual({ ...plugin.cfg.policy, green: undefined, auth: undefined }, { skipPrivate: true, undecided: 'wait', alignment: 'relaxed', green: undefined, auth: undefined })
    assert.equal(plugin.cfg.defer.code, 451)
  })

  for (const [name, ip, opts, rule, reason] of [
    ['IPv4 peer', '192.0.2.10', {}, 'ipv4', 'IPv4 peer 192.0.2.10'],
    ['IPv4-mapped peer', '::ffff:192.0.2.10', {}, 'ipv4', 'IPv4 peer 192.0.2.10'],
    ['relaying IPv6 client', '2001:db8:7::10', { relaying: true }, 'relaying', 'relaying client'],
    ['authenticated IPv6 client', '2001:db8:7::10', { auth: true }, 'auth', 'authenticated client'],
    ['private IPv6 peer', 'fd00::10', { isPrivate: true }, 'private', 'private IPv6 peer fd00::10 (skip_private)'],
  ] as const) {
    it(`${name}: untouched, no Redis traffic, even with Redis failing; no results entry, one debug line per transaction`, async () => {
      // Twice: the second transaction from the same kind of peer logs the same line (the
      // screen is reused, the line object is made per transaction; this test sees its text).
      for (let t = 0; t < 2; t++) {
        const { plugin, store, conn } = setup(ip, 'a@x.test', opts)
        store.failWith = new Error('must not be called')
        const lines: string[] = []
        conn.loginfo = (_p: unknown, line: unknown) => lines.push(`info ${String(line)}`)
        conn.logdebug = (_p: unknown, line: unknown) => lines.push(`debug ${String(line)}`)
        const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
        assert.equal(r.rc, undefined)
        assert.equal((await fixtures.callRcpt(plugin, conn, 'carol@rcpt.test')).rc, undefined)
        const d = await fixtures.callDataPost(plugin, conn)
        assert.equal(d.rc, undefined)
        assert.equal(store.requests.length, 0)
        assert.equal(store.counted.length, 0)
        assert.equal(conn.transaction.results.get('mx6-receive'), undefined)
        assert.deepEqual(lines, [`debug rcpt verdict=skip rule=${rule}: ${reason}`])
      }
    })
  }

  it('unknown IPv6 peer with undecided=defer: 451 4.7.26 at rcpt, counted', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    plugin.cfg.policy.undecided = 'defer'
    const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    assert.equal(r.rc, DENYSOFT)
    assert.match(replyText(r.msg), /^451 .*4\.7\.26/)
    assert.equal(store.requests.length, 1)
    assert.equal(store.requests[0].ipCandidates?.length, 129)
    assert.deepEqual(store.counted, ['rcpt.defer.none'])
    const res = conn.transaction.results.get('mx6-receive')
    assert.deepEqual(res.fail, ['rcpt:none'])
  })

  it('a reload with another [defer] text answers with it', async () => {
    const first = setup('2001:db8:7::10', 'a@other.test')
    first.plugin.cfg.policy.undecided = 'defer'
    const a = await fixtures.callRcpt(first.plugin, first.conn, 'bob@rcpt.test')
    assert.match(replyText(a.msg), /^451 4\.7\.26 /)
    // What load_config does on a change: a new [defer] section.
    const second = setup('2001:db8:7::12', 'a@other.test')
    second.plugin.cfg = { ...first.plugin.cfg, defer: { ...first.plugin.cfg.defer, code: 450, status: '4.7.1', text: 'Try our IPv4 MX' } }
    const c = await fixtures.callRcpt(second.plugin, second.conn, 'bob@rcpt.test')
    assert.equal(replyText(c.msg), '450 4.7.1 Try our IPv4 MX')
  })

  it('ip:allow hit: accepted at rcpt; nothing to look up after DATA', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    store.ipAllow.set('2001:db8:7::/64', 'partner')
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    assert.equal((await fixtures.callRcpt(plugin, conn, 'eve@rcpt.test')).rc, undefined)
    assert.equal(store.requests.length, 1, 'second recipient reuses the transaction cache')
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>'), new Address('<eve@rcpt.test>')]
    assert.equal((await fixtures.callDataPost(plugin, conn)).rc, OK, 'trusted: OK ends data_post, later spam filters do not run')
    assert.equal(store.requests.length, 1)
    assert.match(conn.transaction.results.get('mx6-receive').reason, /2001:db8:7::\/64 \("partner"\)/)
  })

  it('every recipient trusted for good at rcpt: data_post reads no header and asks nothing; a recipient left open goes the whole way', async () => {
    for (const open of [false, true]) {
      const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
      store.ipAllow.set('2001:db8:7::10', 'partner')
      await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
      // A recipient rcpt did not see (the plugin was reloaded in between) is open.
      if (open) conn.transaction.rcpt_to.push(new Address('<eve@rcpt.test>'))
      setHeaderFrom(conn, 'a@other.test')
      const d = await fixtures.callDataPost(plugin, conn)
      if (open) {
        assert.equal(d.rc, DENYSOFT, 'the open recipient has no basis: deferred')
        assert.equal(conn.transaction.results.get('mx6-receive').reason, '1 of 2 recipients without basis (From a@other.test not relaxed-aligned with a passing SPF/DKIM domain (spf=none, dkim pass=none)); whole message deferred', 'decided on the From header')
      } else {
        assert.equal(d.rc, OK)
        assert.equal(store.requests.length, 1, 'nothing asked after DATA')
        assert.deepEqual(store.counted, ['rcpt.trusted.ip:allow', 'data_post.trusted.ip:allow'])
      }
    }
  })

  it("a recipient is found after DATA by Haraka's address object its RCPT was given, also when a later plugin rewrote it in place", async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    setSpf(conn, 'Pass', 'other.test')
    // Trusted at RCPT by the recipient's own address book: a verdict about bob only.
    store.books.set('bob@rcpt.test', new Set(['a@other.test']))
    // As Haraka does: the object the rcpt hook gets is the one rcpt_to holds.
    const bob = new Address('<bob@rcpt.test>')
    conn.transaction.rcpt_to = [bob]
    await fixtures.callRcpt(plugin, conn, bob)
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'book')
    // An alias plugin after mx6-receive rewrites the recipient in place.
    bob.user = 'robert'
    assert.equal((await fixtures.callDataPost(plugin, conn)).rc, OK, 'the recipient keeps its RCPT verdict: trusted, decided at once')
    assert.equal(store.requests.length, 1, 'nothing asked after DATA')
    assert.deepEqual(store.counted, ['rcpt.trusted.book', 'data_post.trusted.book'])
  })

  it('the first RCPT asks the peer lists and the rest in one request; later recipients reuse the answers', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    setSpf(conn, 'Pass', 'other.test')
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    assert.equal(store.requests.length, 1, 'one round trip at the first RCPT')
    const first = store.requests[0]
    assert.equal(first.ipCandidates?.length, 129)
    assert.equal(first.ipGreenCandidates?.length, 129)
    assert.deepEqual(first.books?.[0].owner, 'bob@rcpt.test', 'the book of the recipient in the same request')
    assert.ok(first.domainCandidates?.includes('other.test'))
    await fixtures.callRcpt(plugin, conn, 'eve@rcpt.test')
    assert.equal(store.requests.length, 2)
    assert.equal(store.requests[1].ipCandidates, undefined, 'the peer lists are not asked again in the transaction')
    assert.equal(store.requests[1].books?.[0].owner, 'eve@rcpt.test')
    const { plugin: p2, store: s2, conn: c2 } = setup('2001:db8:7::10', 'a@other.test')
    setSpf(c2, 'Pass', 'other.test')
    s2.ipAllow.set('2001:db8:7::/64', 'partner')
    await fixtures.callRcpt(p2, c2, 'bob@rcpt.test')
    await fixtures.callRcpt(p2, c2, 'eve@rcpt.test')
    assert.equal(s2.requests.length, 1, 'an allow-listed peer: nothing more to ask for the second recipient')
    assert.equal(c2.transaction.results.get('mx6-receive').rule, 'ip:allow')
  })

  it('a repeat peer answered by the peer list cache: Redis is asked nothing (allow-listed) or only the rest', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    setSpf(conn, 'Pass', 'other.test')
    store.peerCache = { ipAllow: { entry: '2001:db8:7::/64', note: 'cached partner' } }
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    assert.equal(store.requests.length, 0, 'no round trip for an allow-listed repeat peer')
    assert.equal(store.cacheAsked, 1)
    assert.match(conn.transaction.results.get('mx6-receive').reason, /cached partner/)
    const { plugin: p2, store: s2, conn: c2 } = setup('2001:db8:7::10', 'a@other.test')
    setSpf(c2, 'Pass', 'other.test')
    s2.peerCache = { ipAllow: null, ipGreen: null }
    s2.books.set('bob@rcpt.test', new Set(['a@other.test']))
    assert.equal((await fixtures.callRcpt(p2, c2, 'bob@rcpt.test')).rc, undefined)
    assert.equal(s2.requests.length, 1)
    assert.equal(s2.requests[0].ipCandidates, undefined, 'the cached peer lists are not asked again')
    assert.equal(s2.requests[0].books?.[0].owner, 'bob@rcpt.test')
    assert.equal(c2.transaction.results.get('mx6-receive').rule, 'book')
  })

  it('an allow-listed peer: the cache is asked once per transaction; no SPF guess and no DNS wait for it', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    store.peerCache = { ipAllow: { entry: '2001:db8:7::/64', note: 'cached partner' } }
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    const res = conn.transaction.results.get('mx6-receive')
    assert.equal(res.rule, 'ip:allow')
    assert.equal(res.green_signals, undefined, 'an ip:allow hit consults no green list')
    assert.match(res.human, /^rcpt <bob@rcpt\.test> verdict=trusted rule=ip:allow: 2001:db8:7::10 in ip:allow 2001:db8:7::\/64 \("cached partner"\) \(\d+\.\d{3} ms\)$/)
    assert.equal((await fixtures.callRcpt(plugin, conn, 'eve@rcpt.test')).rc, undefined)
    assert.equal(store.cacheAsked, 1, 'the cache is probed once per transaction')
    assert.equal(store.requests.length, 0)
    // A repeat peer on neither list with nothing else to ask (no SPF pass): pending, no round trip.
    const { plugin: p3, store: s3, conn: c3 } = setup('2001:db8:7::10', 'a@other.test')
    setSpf(c3, 'Neutral', 'other.test')
    s3.peerCache = { ipAllow: null, ipGreen: null }
    assert.equal((await fixtures.callRcpt(p3, c3, 'bob@rcpt.test')).rc, undefined)
    assert.equal(s3.requests.length, 0)
    // Pending is not a decision yet: not counted, no results entry (its message is, after DATA).
    assert.deepEqual(s3.counted, [])
    assert.equal(c3.transaction.results.get('mx6-receive'), undefined)
    // SPF none: the last-resort guess is asked for a peer off the list, never for one in ip:allow.
    for (const listed of [true, false]) {
      const { plugin: p2, store: s2, conn: c2 } = setup('2001:db8:7::10', 'a@other.test')
      setSpf(c2, 'None', 'other.test')
      s2.peerCache = listed ? { ipAllow: { entry: '2001:db8:7::/64', note: 'cached partner' } } : { ipAllow: null, ipGreen: null }
      let guesses = 0
      s2.spfGuess = async () => {
        guesses++
        return null
      }
      await fixtures.callRcpt(p2, c2, 'bob@rcpt.test')
      assert.equal(guesses, listed ? 0 : 1)
    }
  })

  it('anything thrown in either hook defers: Haraka would otherwise carry on to the next plugin, which may accept', async () => {
    const answer = (hook: (next: (...a: unknown[]) => void) => void): Promise<unknown[]> => new Promise((resolve) => hook((...a) => resolve(a)))
    // A broken peer list cache.
    const { plugin: p5, store: s5, conn: c5 } = setup('2001:db8:7::10', 'a@other.test')
    ;(s5.cache as Any).peer = () => {
      throw new Error('cache broken')
    }
    assert.equal((await answer((next) => p5.mx6_rcpt(next, c5, [new Address('<bob@rcpt.test>')])))[0], DENYSOFT)
    // A connection without its remote end.
    const { plugin: p6, conn: c6 } = setup('2001:db8:7::10', 'a@other.test')
    c6.remote = null
    assert.equal((await answer((next) => p6.mx6_rcpt(next, c6, [new Address('<bob@rcpt.test>')])))[0], DENYSOFT)
    assert.equal((await answer((next) => p6.mx6_data_post(next, c6)))[0], DENYSOFT)
  })

  it("the peer's DNS signals are asked only when they can matter: at the first RCPT for a peer not on ip:allow or ip:green, at connect when RCPT waits for them", async () => {
    const cases = [
      { name: 'allow-listed', list: 'ipAllow', undecided: 'wait', atConnect: 0, afterRcpt: 0 },
      { name: 'on ip:green', list: 'ipGreen', undecided: 'wait', atConnect: 0, afterRcpt: 0 },
      { name: 'unknown', list: '', undecided: 'wait', atConnect: 0, afterRcpt: 1 },
      { name: 'unknown, undecided=defer', list: '', undecided: 'defer', atConnect: 1, afterRcpt: 1 },
    ] as const
    for (const c of cases) {
      const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
      const asked: string[] = []
      plugin.cfg.policy.undecided = c.undecided
      useResolver(plugin, new CachingResolver({ query: async (name: string) => (asked.push(name), { rcode: 3, answers: [], authorities: [] }) }, { negativeTtl: 0, maxTtl: 0 }))
      if (c.list) store[c.list].set('2001:db8:7::/64', 'listed')
      await fixtures.callHook(plugin, 'mx6_connect', conn)
      assert.equal(asked.length, c.atConnect, `${c.name}: DNS lookups at connect`)
      await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      await new Promise((r) => setImmediate(r))
      assert.equal(asked.length, c.afterRcpt, `${c.name}: DNS lookups after RCPT (${asked.join(', ')})`)
      if (c.afterRcpt) assert.match(asked[0], /^0\.1\.0\.0\.(0\.){16}7\.0\.0\.0\.8\.b\.d\.0\.1\.0\.0\.2\.ip6\.arpa$/, `the PTR lookup of the peer: ${asked[0]}`)
    }
  })

  it('a provider zone: looked up as the peer connects (not for a peer the list cache knows listed, nor IPv4), and its answer decides with provider, zone and answer named', async () => {
    const zoneCfg = { name: 'dnswl', zone: 'list.dnswl.test', kind: 'ip' as const, trusted: [[[127, 127], [0, 0], [0, 255], [3, 3]]], green: [], error: [], timeoutMs: 500 }
    const run = async (ip: string, listed: boolean) => {
      const { plugin, store, conn } = setup(ip, 'a@other.test')
      plugin.cfg.providers = [zoneCfg]
      const asked: string[] = []
      useResolver(plugin, new CachingResolver({ query: async (name: string) => (asked.push(name), { rcode: 0, answers: [{ type: 1, ttl: 60, address: '127.0.10.3' }], authorities: [] }) }, { negativeTtl: 0, maxTtl: 60 }))
      if (listed) store.peerCache = { ipAllow: { entry: ip, note: '' }, ipGreen: null }
      await fixtures.callHook(plugin, 'mx6_connect', conn)
      return { plugin, conn, asked }
    }
    const v6 = await run('2001:db8:7::10', false)
    const zoneAsked = () => v6.asked.filter((n) => n.endsWith('.list.dnswl.test'))
    assert.deepEqual(zoneAsked(), ['0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.0.0.0.8.b.d.0.1.0.0.2.list.dnswl.test'], 'asked at connect (with the PTR lookup host:green needs)')
    assert.deepEqual((await run('2001:db8:7::10', true)).asked, [], 'the list cache knows it in ip:allow: nothing asked')
    assert.deepEqual((await run('192.0.2.10', false)).asked, [], 'IPv4: nothing asked')
    const lines: string[] = []
    v6.conn.loginfo = (_p: unknown, line: unknown) => lines.push(String(line))
    await fixtures.callRcpt(v6.plugin, v6.conn, 'bob@rcpt.test')
    v6.conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    setHeaderFrom(v6.conn, 'a@other.test')
    const d = await fixtures.callDataPost(v6.plugin, v6.conn)
    assert.equal(d.rc, OK, 'trusted: accepted')
    assert.equal(zoneAsked().length, 1, 'the answer from connect served the decision')
    const line = lines.find((l) => l.startsWith('data_post'))
    assert.match(line ?? '', /verdict=trusted rule=dnswl: 2001:db8:7::10 listed by provider dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted/)
    assert.match(line ?? '', /providers dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted/)
    assert.match(String(v6.conn.results.get('mx6-receive')?.providers), /dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted/)
  })

  it("a repeat peer's DNS signals are computed once; each connection's HELO is applied to them, its own results entry and line", async () => {
    const ip = '2001:db8:7::10'
    const asked: string[] = []
    const answer = (type: number, f: Record<string, unknown>) => ({ rcode: 0, answers: [{ type, ttl: 300, ...f }], authorities: [] })
    const resolver = new CachingResolver(
      {
        query: async (name: string, type: string) => {
          asked.push(`${type} ${name}`)
          if (type === 'PTR') return answer(12, { domain: 'client.other.test.' })
          if (type === 'AAAA' && name === 'client.other.test') return answer(28, { address: ip })
          return { rcode: 3, answers: [], authorities: [] }
        },
      },
      { negativeTtl: 300, maxTtl: 3600 },
    )
    const { plugin, store } = setup(ip, 'a@other.test')
    plugin.cfg.policy.green.fcrdns = true
    useResolver(plugin, resolver)
    store.peerCache = { ipAllow: null, ipGreen: null }
    const seen: string[][] = []
    for (const helo of ['client.other.test', 'mail.elsewhere.test', 'client.other.test']) {
      const conn: Any = fixtures.makeConnection({ ip, mailFrom: 'a@other.test', helo })
      conn.remote.is_private = false
      conn.hooks_to_run = [['spamassassin', 'hook_data_post']]
      await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
      conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
      setHeaderFrom(conn, 'a@other.test')
      const lines: string[] = []
      conn.loginfo = (_p: unknown, line: unknown) => lines.push(String(line))
      await fixtures.callDataPost(plugin, conn)
      const res = conn.transaction.results.get('mx6-receive')
      seen.push([String(conn.results.get('mx6-receive')?.fcrdns), `${res.verdict} ${res.rule}`, /\[peer signals: fcrdns (\w+)/.exec(lines.join('\n'))?.[1] ?? 'no line'])
    }
    assert.deepEqual(seen, [
      ['pass: forward-confirmed client.other.test matches HELO', 'green fcrdns', 'pass'],
      ['fail: forward-confirmed client.other.test but HELO "mail.elsewhere.test" differs', 'defer none', 'fail'],
      ['pass: forward-confirmed client.other.test matches HELO', 'green fcrdns', 'pass'],
    ])
    // The From domain's DMARC policy is asked too, once: the resolver caches its NXDOMAIN.
    assert.deepEqual(asked.map((q) => q.split(' ')[0]).sort(), ['AAAA', 'PTR', 'TXT'], `the PTR and AAAA lookups of the first connection only, and one DMARC lookup: ${asked.join(', ')}`)
    assert.ok(asked.includes('TXT _dmarc.other.test'), asked.join(', '))
  })

  it("keeps its own state out of Haraka's notes: connection and transaction notes have the same keys after RCPT and DATA, IPv6 (with DNS signals and a last-resort SPF guess) and IPv4", async () => {
    for (const ip of ['2001:db8:7::10', '192.0.2.10']) {
      const { plugin, store, conn } = setup(ip, 'a@nospf.test')
      // SPF none and a default last-resort record that covers the peer: the guess is evaluated
      // and kept for data_post, where it authenticates the From domain (in domain:allow).
      setSpf(conn, 'None', 'nospf.test')
      plugin.cfg.spfGuess = { enabled: true, defaultRecord: 'v=spf1 ip6:2001:db8:7::/64 -all' }
      store.domainAllow.set('nospf.test', 'partner')
      plugin.cfg.policy.undecided = 'defer'
      const before = [Object.keys(conn.notes).sort(), Object.keys(conn.transaction.notes).sort()]
      await fixtures.callHook(plugin, 'mx6_connect', conn)
      await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      plugin.cfg.policy.undecided = 'wait'
      await fixtures.callRcpt(plugin, conn, 'carol@rcpt.test')
      conn.transaction.rcpt_to = [new Address('<carol@rcpt.test>')]
      setHeaderFrom(conn, 'a@nospf.test')
      await fixtures.callDataPost(plugin, conn)
      const res = conn.transaction.results.get('mx6-receive')
      if (ip.includes(':')) {
        assert.equal(store.requests.length > 0, true, 'the IPv6 peer was judged')
        assert.match(res.spf_guess, /^pass nospf\.test \(default: v=spf1 ip6:2001:db8:7::\/64 -all\)/, 'the guess was made')
        assert.deepEqual([res.phase, res.verdict, res.rule], ['data_post', 'trusted', 'domain:allow'], `data_post decided with the guess: ${res.reason}`)
        assert.match(String(conn.results.get('mx6-receive')?.fcrdns), /^fail/, 'the DNS signals were gathered')
      } else assert.equal(res, undefined, 'an IPv4 peer is left without a results entry')
      assert.deepEqual([Object.keys(conn.notes).sort(), Object.keys(conn.transaction.notes).sort()], before, ip)
    }
  })

  it('a failed lookup defers the recipient; the next RCPT asks again, and an entry added meanwhile counts', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    store.failWith = new Error('redis not connected')
    const r1 = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    assert.equal(r1.rc, DENYSOFT)
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'store-error')
    store.failWith = null
    store.ipAllow.set('2001:db8:7::10', 'added after the failure')
    assert.equal((await fixtures.callRcpt(plugin, conn, 'eve@rcpt.test')).rc, undefined)
    assert.equal(store.requests.length, 2)
    assert.equal(store.requests[1].ipCandidates?.length, 129)
    assert.match(conn.transaction.results.get('mx6-receive').reason, /added after the failure/)
  })

  it('pending at rcpt, DKIM-authenticated allowed domain accepted after DATA', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@allowed.test')
    store.domainAllow.set('allowed.test', 'partner')
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    conn.transaction.results.add({ name: 'dkim' }, { pass: 'allowed.test' })
    setHeaderFrom(conn, 'Ann <ann@allowed.test>')
    const d = await fixtures.callDataPost(plugin, conn)
    assert.equal(d.rc, OK)
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'domain:allow')
  })

  it('after DATA, a domain the list cache knows in domain:allow decides without a round trip; an unlisted one asks the rest', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@allowed.test')
    store.peerCache = { ipAllow: null, ipGreen: null }
    store.domainCache.set('allowed.test test', { entry: 'allowed.test', note: 'cached partner' })
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    const before = store.requests.length
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    conn.transaction.results.add({ name: 'dkim' }, { pass: 'allowed.test' })
    setHeaderFrom(conn, 'Ann <ann@allowed.test>')
    assert.equal((await fixtures.callDataPost(plugin, conn)).rc, OK)
    assert.equal(store.requests.length, before, 'no round trip after DATA')
    const res = conn.transaction.results.get('mx6-receive')
    assert.equal(res.rule, 'domain:allow')
    assert.match(res.reason, /cached partner/)
    // Cached as not listed: the books and green lists are asked, in one request.
    const { plugin: p2, store: s2, conn: c2 } = setup('2001:db8:7::10', 'a@allowed.test')
    s2.peerCache = { ipAllow: null, ipGreen: null }
    s2.domainCache.set('allowed.test test', null)
    s2.books.set('bob@rcpt.test', new Set(['ann@allowed.test']))
    await fixtures.callRcpt(p2, c2, 'bob@rcpt.test')
    const n = s2.requests.length
    c2.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    c2.transaction.results.add({ name: 'dkim' }, { pass: 'allowed.test' })
    setHeaderFrom(c2, 'Ann <ann@allowed.test>')
    assert.equal((await fixtures.callDataPost(p2, c2)).rc, OK)
    assert.equal(s2.requests.length, n + 1)
    assert.equal(s2.requests[n].books?.[0].owner, 'bob@rcpt.test')
    assert.equal(c2.transaction.results.get('mx6-receive').rule, 'book')
  })

  it("after DATA, a From domain the list cache knows in domain:allow is decided without waiting for the peer's DNS; otherwise data_post waits for it; with undecided=defer RCPT does", async () => {
    // A resolver whose answers come only when the test says so.
    const held: Array<() => void> = []
    // The From domain's DMARC policy (asked after DATA) is answered at once: only the peer's signals are held.
    const nx = { rcode: 3, answers: [], authorities: [] }
    const holding = () =>
      new CachingResolver({ query: (name: string) => (name.startsWith('_dmarc.') ? Promise.resolve(nx) : new Promise((r) => held.push(() => r(nx)))) }, { negativeTtl: 0, maxTtl: 0 })
    const answered = (calls: unknown[][]) => poll(() => (calls.length ? calls : undefined), 2000, 'an answer')
    const afterData = (conn: Any, dkim: boolean) => {
      conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
      if (dkim) conn.transaction.results.add({ name: 'dkim' }, { pass: 'allowed.test' })
      setHeaderFrom(conn, 'Ann <ann@allowed.test>')
    }
    // 1. Trusted at once, the DNS lookups still on their way.
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@allowed.test')
    useResolver(plugin, holding())
    store.peerCache = { ipAllow: null, ipGreen: null }
    store.domainCache.set('allowed.test test', { entry: 'allowed.test', note: 'cached partner' })
    await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    assert.ok(held.length > 0, 'the peer DNS lookups were started at RCPT and are not answered')
    afterData(conn, true)
    const calls: unknown[][] = []
    plugin.mx6_data_post((...args: unknown[]) => calls.push(args), conn)
    assert.deepEqual((await answered(calls)).map((a) => a[0]), [OK])
    const res = conn.transaction.results.get('mx6-receive')
    assert.equal(res.rule, 'domain:allow')
    assert.doesNotMatch(res.human, /peer signals/, 'the DNS signals were not used')
    assert.equal(store.requests.length, 0)
    // 2. Nothing cached for the domain, DNS not answered yet: data_post waits for it, then decides.
    held.length = 0
    const { plugin: p2, store: s2, conn: c2 } = setup('2001:db8:7::10', 'a@allowed.test')
    useResolver(p2, holding())
    s2.peerCache = { ipAllow: null, ipGreen: null }
    await fixtures.callRcpt(p2, c2, 'bob@rcpt.test')
    afterData(c2, false)
    const waited: unknown[][] = []
    p2.mx6_data_post((...args: unknown[]) => waited.push(args), c2)
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(waited.length, 0, 'waits for the DNS lookups')
    while (held.length) for (const answer of held.splice(0)) answer(), await new Promise((r) => setImmediate(r))
    assert.deepEqual((await answered(waited)).map((a) => a[0]), [DENYSOFT])
    assert.match(c2.transaction.results.get('mx6-receive').human, /\[peer signals: fcrdns fail/)
    // 3. undecided=defer: RCPT waits for the lookups started at connect.
    held.length = 0
    const { plugin: p4, store: s4, conn: c4 } = setup('2001:db8:7::10', 'a@other.test')
    p4.cfg.policy.undecided = 'defer'
    useResolver(p4, holding())
    s4.peerCache = { ipAllow: null, ipGreen: null }
    await fixtures.callHook(p4, 'mx6_connect', c4)
    assert.ok(held.length > 0, 'started at connect')
    const got: unknown[][] = []
    p4.mx6_rcpt((...args: unknown[]) => got.push(args), c4, [new Address('<bob@rcpt.test>')])
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(got.length, 0, 'waits for DNS')
    while (held.length) for (const answer of held.splice(0)) answer(), await new Promise((r) => setImmediate(r))
    assert.deepEqual((await answered(got)).map((a) => a[0]), [DENYSOFT])
  })

  it('spoofed From of an allowed domain (no DKIM, SPF for another domain): deferred after DATA', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    store.domainAllow.set('allowed.test', 'partner')
    setSpf(conn, 'Pass', 'other.test')
    await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    setHeaderFrom(conn, 'ceo@allowed.test')
    const d = await fixtures.callDataPost(plugin, conn)
    assert.equal(d.rc, DENYSOFT)
    assert.match(replyText(d.msg), /^451 /)
  })

  it('address book: the same reply whether or not an entry exists when unauthenticated', async () => {
    const replies: string[] = []
    const calls: number[] = []
    for (const listed of [true, false]) {
      const { plugin, store, conn } = setup('2001:db8:7::10', 'friend@other.test')
      plugin.cfg.policy.undecided = 'defer'
      if (listed) store.books.set('bob@rcpt.test', new Set(['friend@other.test']))
      setSpf(conn, 'Fail', 'other.test')
      const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      replies.push(replyText(r.msg))
      calls.push(store.requests.length)
    }
    assert.equal(replies[0], replies[1])
    assert.deepEqual(calls, [1, 1])
  })

  it('address book with SPF pass: accepted at rcpt; +tag recipient uses the base book', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'Friend@Other.test')
    store.books.set('bob@rcpt.test', new Set(['friend@other.test']))
    setSpf(conn, 'Pass', 'other.test')
    const r = await fixtures.callRcpt(plugin, conn, 'Bob+news@rcpt.test')
    assert.equal(r.rc, undefined)
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'book')
  })

  it('store failure (e.g. WRONGTYPE): 4xx, never an accept, never a 5xx', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@allowed.test')
    store.failWith = FakeStore.wrongType()
    const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    assert.equal(r.rc, DENYSOFT)
    assert.match(replyText(r.msg), /^451 /)
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'store-error')
  })

  it('a recipient never seen at rcpt is undecided after DATA, not trusted', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@other.test')
    store.ipAllow.set('2001:db8:7::/64', '')
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    setHeaderFrom(conn, 'a@other.test')
    const d = await fixtures.callDataPost(plugin, conn)
    assert.equal(d.rc, DENYSOFT)
  })

  it('MX6 listener: multi-line 550 5.5.7 after DATA with Authentication-Results, 4xx elsewhere', async () => {
    const mk = (localIp: string) => {
      const { plugin, store, conn } = setup('2001:db8:7::10', 'a@neutral.test')
      plugin.cfg.mx6.listeners = [{ ip: '2001:db8:25::6', port: null }]
      plugin.cfg.mx6.registrationUrl = 'https://mx6.example.net/register'
      conn.local.ip = localIp
      conn.local.port = 25
      conn.local.host = 'mx.rcpt.test'
      conn.auth_results = () => 'mx.rcpt.test;\r\n\tspf=neutral smtp.mailfrom=neutral.test'
      return { plugin, store, conn }
    }
    const mx6 = mk('2001:db8:25::6')
    await fixtures.callRcpt(mx6.plugin, mx6.conn, 'bob@rcpt.test')
    mx6.conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    setHeaderFrom(mx6.conn, 'a@neutral.test')
    const d = await fixtures.callDataPost(mx6.plugin, mx6.conn)
    assert.equal(d.rc, 902, 'DENY')
    assert.equal(d.msg.code, 550)
    assert.deepEqual(d.msg.reply, [
      '5.5.7 MX6 fallback: not accepted over IPv6; please deliver this message over IPv4 to our regular MX',
      '5.5.7 Authentication-Results: mx.rcpt.test;',
      '5.5.7  spf=neutral smtp.mailfrom=neutral.test',
      '5.5.7 To be accepted over IPv6, ask at https://mx6.example.net/register',
    ])
    assert.deepEqual(mx6.store.counted, ['data_post.fallback.none'], 'the pending recipient counts with its message')

    const regular = mk('2001:db8:25::25')
    await fixtures.callRcpt(regular.plugin, regular.conn, 'bob@rcpt.test')
    regular.conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    setHeaderFrom(regular.conn, 'a@neutral.test')
    const r = await fixtures.callDataPost(regular.plugin, regular.conn)
    assert.equal(r.rc, DENYSOFT)
    assert.match(replyText(r.msg), /^451 4\.7\.26 /)
  })

  it('green (ip:green): accepted, and data_post lets the content filters run (CONT, not OK)', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@neutral.test')
    store.ipGreen.set('2001:db8:7::/64', 'never retries')
    assert.equal((await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')).rc, undefined)
    assert.equal(conn.transaction.results.get('mx6-receive').verdict, 'green')
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    setHeaderFrom(conn, 'a@neutral.test')
    const d = await fixtures.callDataPost(plugin, conn)
    assert.equal(d.rc, undefined)
    assert.equal(conn.transaction.results.get('mx6-receive').rule, 'ip:green')
  })

  it('trusted_skips_filters=false: trusted mail also goes through the filters', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@neutral.test')
    plugin.cfg.trustedSkipsFilters = false
    store.ipAllow.set('2001:db8:7::10', '')
    await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    assert.equal((await fixtures.callDataPost(plugin, conn)).rc, undefined)
  })

  it('trusted, and no data_post hook after this one (Haraka hooks_to_run empty): CONT, which does the same as OK there', async () => {
    for (const [rest, want] of [[[], undefined], [[['spamassassin', 'hook_data_post']], OK]] as const) {
      const { plugin, store, conn } = setup('2001:db8:7::10', 'a@neutral.test')
      store.ipAllow.set('2001:db8:7::10', '')
      await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
      conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
      conn.hooks_to_run = [...rest]
      assert.equal((await fixtures.callDataPost(plugin, conn)).rc, want, `${rest.length} hooks after mx6-receive`)
    }
  })

  it('a verdict given at rcpt is counted again after DATA but not added to the results twice; an IPv4 skip is not logged at info and gets no results entry', async () => {
    const { plugin, store, conn } = setup('2001:db8:7::10', 'a@neutral.test')
    store.ipAllow.set('2001:db8:7::10', 'partner')
    await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
    await fixtures.callDataPost(plugin, conn)
    const res = conn.transaction.results.get('mx6-receive')
    assert.deepEqual([res.phase, res.pass], ['rcpt', ['rcpt:ip:allow']])
    assert.deepEqual(store.counted, ['rcpt.trusted.ip:allow', 'data_post.trusted.ip:allow'])
    // The repetition after DATA is a debug line, made only when Haraka formats it.
    const repeat: unknown[] = []
    conn.logdebug = (_p: unknown, line: unknown) => repeat.push(line)
    await fixtures.callDataPost(plugin, conn)
    assert.equal(repeat.length, 1)
    assert.equal(typeof repeat[0], 'object', 'not a string: built only when logged')
    assert.match(inspect(repeat[0]), /^data_post verdict=trusted rule=ip:allow: 2001:db8:7::10 in ip:allow 2001:db8:7::10 \("partner"\) \(\d+\.\d{3} ms\)$/)
    const v4 = setup('192.0.2.10', 'a@neutral.test')
    const info: string[] = []
    v4.conn.loginfo = (_p: unknown, line: unknown) => info.push(String(line))
    const debug: string[] = []
    v4.conn.logdebug = (_p: unknown, line: unknown) => debug.push(inspect(line))
    await fixtures.callRcpt(v4.plugin, v4.conn, 'bob@rcpt.test')
    assert.equal(v4.conn.transaction.results.get('mx6-receive'), undefined)
    assert.deepEqual(info, [])
    // The next IPv4 transaction from the same address (its screen is memoised): the same debug line.
    const again = setup('192.0.2.10', 'a@neutral.test')
    again.conn.logdebug = (_p: unknown, line: unknown) => debug.push(inspect(line))
    await fixtures.callRcpt(again.plugin, again.conn, 'bob@rcpt.test')
    assert.deepEqual(debug, ['rcpt verdict=skip rule=ipv4: IPv4 peer 192.0.2.10', 'rcpt verdict=skip rule=ipv4: IPv4 peer 192.0.2.10'])
  })
})
