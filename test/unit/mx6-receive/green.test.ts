// Greenlisting rules: history thresholds and the green decisions.
import assert from 'node:assert/strict'
import { normaliseMailbox } from '../../../plugins/lib/mailbox'
import { AUTH_DEFAULTS } from '../../../plugins/mx6-receive/auth'
import { decideRcpt, planRcpt, type PolicyConfig, type RcptFacts } from '../../../plugins/mx6-receive/decide'
import { authenticatedDomains, decideData, type DataFacts } from '../../../plugins/mx6-receive/decide-data'
import { GREEN_DEFAULTS, historyPasses, peerGreen } from '../../../plugins/mx6-receive/green'
import type { PeerSignals } from '../../../plugins/mx6-receive/peer-signals'

const IP = '2001:db8:7::10'
const withAligned = (f: Omit<DataFacts, 'aligned'>): DataFacts => ({ ...f, aligned: authenticatedDomains(f, 'relaxed') })

describe('green: history thresholds', () => {
  const cfg = { enabled: true, minCount: 10, minDays: 30, maxIdleDays: 90 }
  const now = 1_800_000_000
  const day = 86400
  const rows: Array<[string, number, number, number, boolean]> = [
    ['enough, long and recent', 50, now - 100 * day, now - day, true],
    ['too few messages', 9, now - 100 * day, now - day, false],
    ['too young', 50, now - 10 * day, now - day, false],
    ['gone quiet', 50, now - 400 * day, now - 120 * day, false],
    ['exactly at the thresholds', 10, now - 30 * day, now - 90 * day, true],
  ]
  for (const [name, count, first, last, want] of rows) {
    it(`${name} -> ${want}`, () => assert.equal(!!historyPasses({ domain: 'x.test', count, first, last }, now, cfg), want))
  }
})

const box = (a: string) => normaliseMailbox(a.split('@')[0], a.split('@')[1], '+')!
const CFG: PolicyConfig = { skipPrivate: true, undecided: 'wait', alignment: 'relaxed', green: { ...GREEN_DEFAULTS, fcrdns: true, asn: true }, auth: AUTH_DEFAULTS }
const signals = (over: Partial<PeerSignals> = {}): PeerSignals => ({
  fcrdns: { outcome: 'fail', confirmed: [], detail: 'no PTR' },
  asn: { outcome: 'fail', asns: [], detail: 'no origin AS' },
  ...over,
})
const rcptFacts = (s: PeerSignals, spf: RcptFacts['spf'] = null): RcptFacts => ({ ipv6: IP, mx6: false, spf, mailFrom: box('a@x.test'), rcpt: box('bob@rcpt.test'), peerSignals: s, now: 1_800_000_000 })

describe('green: decisions', () => {
  it('plans every green lookup in the same single request', () => {
    const req = planRcpt(rcptFacts(signals({ fcrdns: { outcome: 'pass', confirmed: ['mta1.out.example.test'], detail: '' }, asn: { outcome: 'pass', asns: ['64500'], detail: '' } }), { result: 'pass', domain: 'x.test' }), {}, CFG)
    assert.equal(req.ipCandidates?.length, 129)
    assert.equal(req.ipGreenCandidates?.length, 129)
    assert.deepEqual(req.hostGreenCandidates, ['mta1.out.example.test', 'out.example.test', 'example.test', 'test'])
    assert.deepEqual(req.asnGreenCandidates, ['64500'])
    assert.deepEqual(req.domainGreenCandidates, ['x.test', 'test'])
    assert.deepEqual(req.historyDomains, ['x.test'])
  })

  const rows: Array<[string, PeerSignals, Record<string, unknown>, string]> = [
    ['ip:green', signals(), { ipAllow: null, ipGreen: { entry: '2001:db8:7::/64', note: 'never retries' } }, 'green/ip:green/final'],
    ['FCrDNS with matching HELO', signals({ fcrdns: { outcome: 'pass', confirmed: ['client.other.test'], detail: 'ok' } }), { ipAllow: null }, 'green/fcrdns/final'],
    ['host:green (forwarder), HELO differs', signals({ fcrdns: { outcome: 'fail', confirmed: ['fwd.example.test'], detail: '' } }), { ipAllow: null, hostGreen: { entry: 'example.test', note: 'strict forwarder' } }, 'green/host:green/final'],
    ['asn:green', signals({ asn: { outcome: 'pass', asns: ['64500'], detail: 'origin AS 64500' } }), { ipAllow: null, asnGreen: { entry: '64500', note: '' } }, 'green/asn:green/final'],
    ['DNS error: signal absent, nothing else', signals({ fcrdns: { outcome: 'err', confirmed: [], detail: 'SERVFAIL' } }), { ipAllow: null }, 'pending/none/open'],
    ['trusted wins over green', signals({ fcrdns: { outcome: 'pass', confirmed: ['client.other.test'], detail: 'ok' } }), { ipAllow: { entry: IP, note: '' } }, 'trusted/ip:allow/final'],
  ]
  for (const [name, s, answers, want] of rows) {
    it(`${name} -> ${want}`, () => {
      const d = decideRcpt(rcptFacts(s), answers as never, CFG)
      assert.equal(`${d.verdict}/${d.rule}/${d.final ? 'final' : 'open'}`, want)
    })
  }

  const dataFacts = (over: Partial<DataFacts>): DataFacts => withAligned({
    mx6: false,
    peerGreen: null,
    now: 1_800_000_000,
    spf: null,
    dkimPass: ['other.test'],
    dkimFail: [],
    from: { mailbox: box('a@other.test') },
    recipients: [{ rcpt: box('bob@rcpt.test'), prior: { verdict: 'pending', rule: 'none', final: false, reason: '' } }],
    ...over,
  })
  it('after DATA: history of the authenticated From domain makes it green', () => {
    const d = decideData(dataFacts({}), { domainAllow: null, books: [null], domainGreen: null, history: [{ domain: 'other.test', count: 40, first: 1_800_000_000 - 200 * 86400, last: 1_800_000_000 - 86400 }] }, CFG)
    assert.equal(`${d.message.verdict}/${d.message.rule}`, 'green/history')
  })
  it('after DATA: domain:green needs the From to be authenticated', () => {
    const ok = decideData(dataFacts({}), { domainAllow: null, books: [null], domainGreen: { entry: 'other.test', note: '' } }, CFG)
    assert.equal(`${ok.message.verdict}/${ok.message.rule}`, 'green/domain:green')
    const spoofed = decideData(dataFacts({ dkimPass: ['evil.test'] }), { domainGreen: { entry: 'other.test', note: '' } }, CFG)
    assert.equal(spoofed.message.verdict, 'defer')
  })
  it('after DATA: a peer-level green found at rcpt carries every open recipient', () => {
    const d = decideData(dataFacts({ dkimPass: [], peerGreen: { rule: 'fcrdns', reason: 'fcrdns' } }), {}, CFG)
    assert.equal(`${d.message.verdict}/${d.message.rule}`, 'green/fcrdns')
  })
  it('a message with one trusted and one green recipient is green (the filters run)', () => {
    const d = decideData(
      dataFacts({
        recipients: [
          { rcpt: box('bob@rcpt.test'), prior: { verdict: 'trusted', rule: 'ip:allow', final: true, reason: '' } },
          { rcpt: box('eve@rcpt.test'), prior: { verdict: 'green', rule: 'fcrdns', final: true, reason: '' } },
        ],
      }),
      {},
      CFG,
    )
    assert.equal(d.message.verdict, 'green')
  })
  it('peerGreen() stops at the first rule that holds', () => {
    assert.equal(peerGreen(IP, signals(), { ipGreen: null }, CFG.green), null)
  })
})

