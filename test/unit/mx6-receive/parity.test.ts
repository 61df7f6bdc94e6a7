// mx6ctl explain prints what the plugin decides: for each scenario and phase, the plugin's
// recorded decision (its log line: verdict, rule, reason; and whether RCPT settled it for
// good) equals explain's, given the same lists, DNS and facts.
import assert from 'node:assert/strict'
import { Address } from '@haraka/email-address'
import * as fixtures from 'haraka-test-fixtures'
import { CachingResolver, type RawReply } from '../../../plugins/lib/dns'
import { reverseNibbles } from '../../../plugins/lib/ip'
import { readReceiveConfig } from '../../../plugins/mx6-receive/config'
import { evaluateDmarc } from '../../../plugins/mx6-receive/dmarc'
import { authText } from '../../../plugins/mx6-receive/record'
import { gatherPeerSignals, matchHelo } from '../../../plugins/mx6-receive/peer-signals'
import { Session, type Outcome } from '../../../plugins/mx6-receive/session'
import { explain, type ExplainDeps } from '../../../scripts/ctl/explain-core'
import { parseFacts } from '../../../scripts/ctl/explain'
import { FakeStore } from '../fake-store'
import { useStore } from './fixture'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any

const PEER = '2001:db8:7::10'
const MX6 = '2001:db8:25::6'
const ans = (type: number, f: Record<string, unknown>): RawReply => ({ rcode: 0, answers: [{ type, ttl: 60, ...f }], authorities: [] })
/** PTR/AAAA of PEER (client.other.test) and its origin AS 64500, in a table. */
const ZONE: Record<string, RawReply> = {
  [`PTR ${reverseNibbles(PEER)}.ip6.arpa`]: ans(12, { domain: 'client.other.test.' }),
  'AAAA client.other.test': ans(28, { address: PEER }),
  [`TXT ${reverseNibbles(PEER)}.origin6.asn.test`]: ans(16, { data: ['64500 | 2001:db8:7::/64 | ZZ | test | 2020-01-01'] }),
  // strict.test publishes DMARC p=reject with strict alignment.
  'TXT _dmarc.strict.test': ans(16, { data: ['v=DMARC1; p=reject; adkim=s; aspf=s'] }),
}
const resolver = () => new CachingResolver({ query: async (name, type) => ZONE[`${type} ${name}`] ?? { rcode: 3, answers: [], authorities: [] } }, { negativeTtl: 0, maxTtl: 0 })

interface Scenario {
  name: string
  ini?: Record<string, Record<string, string>>
  lists?: (s: FakeStore) => void
  helo?: string
  mailFrom: string
  spf: string
  from?: string
  dkim?: string
  listener?: string
  redisDown?: boolean
  /** The last decision's "verdict rule [auth]", where the scenario is about it. */
  expect?: string
}

const NOW = Math.floor(Date.now() / 1000)
const SCENARIOS: Scenario[] = [
  { name: 'allow-listed', lists: (s) => s.ipAllow.set('2001:db8:7::/64', 'partner'), mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'address book (SPF)', lists: (s) => s.books.set('bob@rcpt.test', new Set(['friend@other.test'])), mailFrom: 'friend@other.test', spf: 'pass' },
  { name: 'domain:allow with SPF', lists: (s) => s.domainAllow.set('allowed.test', 'partner'), mailFrom: 'news@allowed.test', spf: 'pass' },
  { name: 'domain:allow with DKIM', lists: (s) => s.domainAllow.set('allowed.test', 'partner'), mailFrom: 'bounce@neutral.test', spf: 'neutral', from: 'ceo@allowed.test', dkim: 'allowed.test' },
  { name: 'ip:green', lists: (s) => s.ipGreen.set(PEER, 'never retries'), mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'host:green', lists: (s) => s.hostGreen.set('other.test', 'forwarder'), helo: 'elsewhere.test', mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'fcrdns, undecided=wait', ini: { green: { fcrdns: 'true' } }, helo: 'client.other.test', mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'fcrdns, undecided=defer', ini: { main: { undecided: 'defer' }, green: { fcrdns: 'true' } }, helo: 'client.other.test', mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'fcrdns with SPF fail', ini: { green: { fcrdns: 'true' } }, helo: 'client.other.test', mailFrom: 'a@fail.test', spf: 'fail' },
  { name: 'asn:green', ini: { green: { asn: 'true', asn_zone: 'origin6.asn.test' } }, lists: (s) => s.asnGreen.set('64500', 'strict'), mailFrom: 'a@neutral.test', spf: 'neutral' },
  {
    name: 'history',
    lists: (s) => s.history.set('histo.test', { domain: 'histo.test', count: 40, first: NOW - 100 * 86400, last: NOW - 86400 }),
    mailFrom: 'news@histo.test',
    spf: 'pass',
  },
  { name: 'unknown', mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'unknown, undecided=defer', ini: { main: { undecided: 'defer' } }, mailFrom: 'a@neutral.test', spf: 'neutral' },
  { name: 'Redis down', redisDown: true, mailFrom: 'a@neutral.test', spf: 'pass' },
  { name: 'MX6 listener', ini: { mx6: { listeners: MX6 } }, listener: MX6, mailFrom: 'a@neutral.test', spf: 'neutral' },
  // DMARC: a pass names the aligned identifier; a strict-alignment fail vetoes domain:allow.
  { name: 'DMARC pass, domain:allow', lists: (s) => s.domainAllow.set('strict.test', 'partner'), mailFrom: 'a@strict.test', spf: 'pass', expect: 'trusted domain:allow [dmarc=pass (p=REJECT) header.from=strict.test]' },
  { name: 'DMARC fail (strict SPF alignment), domain:allow', lists: (s) => s.domainAllow.set('strict.test', 'partner'), mailFrom: 'a@mail.strict.test', spf: 'pass', from: 'ceo@strict.test', expect: 'defer auth-fail [dmarc=fail (p=REJECT) header.from=strict.test]' },
  { name: 'mode=observe', ini: { main: { mode: 'observe', undecided: 'defer' } }, mailFrom: 'a@neutral.test', spf: 'neutral' },
]

/** verdict, rule, final and reason of a decision, as compared. */
const shape = (d: { verdict: string; rule: string; final: boolean; reason: string }) => ({ verdict: d.verdict, rule: d.rule, final: d.final, reason: d.reason })
/** A recorded log line: "<phase>[ <rcpt>] verdict=V rule=R: reason (x ms)". */
const parseLine = (line: string) => /^(\S+)(?: <[^>]*>)? verdict=(\S+) rule=(\S+): (.*?)(?: \[((?:dmarc|arc)=[^\]]*)\])?(?: \[peer signals: .*\])?(?: \(\d+\.\d{3} ms\))?$/.exec(line)

/** The plugin through Haraka's hooks: each phase's recorded line, and the session's own outcome (for `final`). */
async function viaPlugin(s: Scenario): Promise<Array<{ phase: string; verdict: string; rule: string; final: boolean; reason: string; auth: string | null }>> {
  const plugin: Any = fixtures.makePlugin('mx6-receive', { register: false })
  const get = plugin.config.get.bind(plugin.config)
  plugin.config.get = (name: string, ...rest: unknown[]) => (name === 'mx6-receive.ini' ? (s.ini ?? {}) : get(name, ...rest))
  plugin.register()
  const store = new FakeStore()
  s.lists?.(store)
  if (s.redisDown) store.failWith = new Error('redis not connected')
  useStore(plugin, store, resolver())
  const conn: Any = fixtures.makeConnection({ ip: PEER, mailFrom: s.mailFrom, helo: s.helo ?? 'x.neutral.test' })
  conn.remote.is_private = false
  if (s.listener) conn.local.ip = s.listener
  conn.hooks_to_run = [['spamassassin', 'hook_data_post']]
  const lines: string[] = []
  conn.loginfo = (_p: unknown, l: unknown) => lines.push(String(l))
  conn.logdebug = (_p: unknown, l: unknown) => lines.push(String(l))
  conn.transaction.results.add({ name: 'spf' }, { scope: 'mfrom', result: s.spf, domain: s.mailFrom.split('@')[1] })
  const outcomes: Outcome[] = []
  const spy = (orig: (...a: Any[]) => Promise<Outcome>) =>
    async function (this: Session, ...a: Any[]) {
      const o = await orig.apply(this, a)
      outcomes.push(o)
      return o
    }
  const { rcpt, data } = Session.prototype
  Session.prototype.rcpt = spy(rcpt)
  Session.prototype.data = spy(data)
  try {
    if (plugin.cfg.policy.undecided === 'defer') await fixtures.callHook(plugin, 'mx6_connect', conn)
    const r = await fixtures.callRcpt(plugin, conn, 'bob@rcpt.test')
    if (r.rc === undefined) {
      conn.transaction.rcpt_to = [new Address('<bob@rcpt.test>')]
      conn.transaction.header.add('From', s.from ?? s.mailFrom)
      if (s.dkim) conn.transaction.results.add({ name: 'dkim' }, { pass: s.dkim })
      await fixtures.callDataPost(plugin, conn)
    }
  } finally {
    Session.prototype.rcpt = rcpt
    Session.prototype.data = data
  }
  const recorded = lines.map(parseLine).filter((m): m is RegExpExecArray => !!m)
  assert.equal(recorded.length, outcomes.length, `one recorded line per decision:\n${lines.join('\n')}`)
  return recorded.map((m, i) => ({ phase: m[1], verdict: m[2], rule: m[3], final: outcomes[i].decision.final, reason: m[4], auth: m[5] ?? null }))
}

/** mx6ctl explain for the same facts, against a store with the same entries and the same DNS. */
async function viaExplain(s: Scenario): Promise<Array<{ phase: string; verdict: string; rule: string; final: boolean; reason: string; auth: string | null }>> {
  const cfg = readReceiveConfig(s.ini ?? {}).config
  const store = new FakeStore()
  s.lists?.(store)
  if (s.redisDown) store.failWith = new Error('redis not connected')
  const r = resolver()
  const g = cfg.policy.green
  const deps: ExplainDeps = {
    cfg,
    store,
    peerSignals: async (ipv6, helo) => {
      const dns = await gatherPeerSignals(ipv6, r, { fcrdns: g.fcrdns || g.hostGreen, asn: g.asn, asnZone: cfg.signals.asnZone })
      return { ...dns, fcrdns: matchHelo(dns.fcrdns, helo || undefined, cfg.signals.heloMatch) }
    },
    evaluateGuess: async () => 'none',
    evaluateDmarc: (input) => evaluateDmarc(input, r, cfg.signals.dnsTimeoutMs),
    isPrivate: () => false,
  }
  const argv = ['--ip', PEER, '--helo', s.helo ?? 'x.neutral.test', '--mail-from', s.mailFrom, '--rcpt', 'bob@rcpt.test', '--spf', s.spf, '--from', s.from ?? s.mailFrom]
  if (s.dkim) argv.push('--dkim-pass', s.dkim)
  if (s.listener) argv.push('--listener', s.listener)
  const e = await explain(parseFacts(argv).facts, deps)
  return [...e.rcpts.map((x) => ({ phase: 'rcpt', ...shape(x.decision), auth: null })), ...(e.data ? [{ phase: 'data_post', ...shape(e.data), auth: authText(e) ?? null }] : [])]
}

describe('mx6-receive and mx6ctl explain decide alike', () => {
  for (const s of SCENARIOS) {
    it(s.name, async () => {
      const plugin = await viaPlugin(s)
      assert.ok(plugin.length > 0)
      const last = plugin[plugin.length - 1]
      if (s.expect) assert.equal(`${last.verdict} ${last.rule} [${last.auth}]`, s.expect, last.reason)
      assert.deepEqual(await viaExplain(s), plugin)
    })
  }
})
