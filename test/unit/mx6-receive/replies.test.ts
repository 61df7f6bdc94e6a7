// The plugin glue's answers: the two deferral texts, an override, and mode=observe.
import assert from 'node:assert/strict'
import { Address } from '@haraka/email-address'
import * as fixtures from 'haraka-test-fixtures'
import { FakeStore } from '../fake-store'
import { useStore } from './fixture'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any
const IP = '2001:db8:7::10'

const DENYSOFT = 903
const OK = 906
const replyText = (msg: Any) => (msg && typeof msg === 'object' ? `${msg.code} ${msg.reply}` : String(msg))

function setup(ip: string, mailFrom: string, ini: Record<string, Record<string, string>> = {}) {
  const plugin: Any = fixtures.makePlugin('mx6-receive', { register: false })
  const get = plugin.config.get.bind(plugin.config)
  plugin.config.get = (name: string, ...rest: unknown[]) => (name === 'mx6-receive.ini' ? ini : get(name, ...rest))
  plugin.register()
  const store = new FakeStore()
  useStore(plugin, store)
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
      ;(thrower.store.cache as Any).peer = () => {
        throw new Error('boom')
      }
      const errors: string[] = []
      thrower.conn.logerror = (_p: unknown, line: unknown) => errors.push(String(line))
      assert.equal((await fixtures.callRcpt(thrower.plugin, thrower.conn, 'bob@rcpt.test')).rc, undefined)
      assert.match(errors.join('\n'), /rcpt decision failed \(mode=observe: would-defer, mail left alone\): Error: boom/)
    })
  })
})
