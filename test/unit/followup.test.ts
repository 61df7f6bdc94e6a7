// Follow-up fingerprints and the report built from them.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { envelopeFingerprint, messageIdFingerprint, net64, report, suggestions, toFields, fromFields, type Attempt } from '../../plugins/lib/followup'

describe('followup: fingerprints', () => {
  const base = envelopeFingerprint('alice@sender.test', ['bob@rcpt.test', 'carol@rcpt.test'])
  it('the same envelope with reordered recipients, other case and +tags is the same', () => {
    assert.equal(envelopeFingerprint('Alice@Sender.TEST', ['carol@rcpt.test', 'BOB+x@rcpt.test']), base)
    assert.equal(envelopeFingerprint('alice+bounces@sender.test', ['bob@rcpt.test', 'carol@rcpt.test', 'bob@rcpt.test']), base)
  })
  it('another sender or recipient set is different; the null sender is its own', () => {
    assert.notEqual(envelopeFingerprint('alice@sender.test', ['bob@rcpt.test']), base)
    assert.notEqual(envelopeFingerprint('dave@sender.test', ['bob@rcpt.test', 'carol@rcpt.test']), base)
    assert.notEqual(envelopeFingerprint('', ['bob@rcpt.test', 'carol@rcpt.test']), base)
  })
  it('the fingerprints keep their form (records written before an upgrade still match): the first 32 hex digits of SHA-256', () => {
    const sha = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32)
    assert.equal(base, sha('alice@sender.test\nbob@rcpt.test\ncarol@rcpt.test'))
    assert.equal(envelopeFingerprint('', ['bob@rcpt.test']), sha('<>\nbob@rcpt.test'))
    assert.equal(messageIdFingerprint('<one@sender.test>'), sha('mid\none@sender.test'))
  })
  it('different messages that share an envelope are told apart by Message-ID', () => {
    const a = messageIdFingerprint('<one@sender.test>')
    assert.equal(messageIdFingerprint(' <one@sender.test> '), a)
    assert.notEqual(messageIdFingerprint('<two@sender.test>'), a)
    assert.equal(messageIdFingerprint(''), null)
    assert.equal(messageIdFingerprint(undefined), null)
  })
  it('keeps the peer /64', () => assert.equal(net64('2001:db8:7::10'), '2001:db8:7::/64'))
})

const at = (over: Partial<Attempt>): Attempt => ({ time: 1000, phase: 'data_post', verdict: 'defer', reason: 'x', mailFrom: 'a@s.test', rcpts: ['b@r.test'], net: '2001:db8:7::/64', host: '', domain: 's.test', size: 500, ...over })

describe('followup: report and suggestions', () => {
  it('round-trips through Redis hash fields', () => {
    const a = at({ host: 'mx.s.test' })
    assert.deepEqual(fromFields(toFields(a)), a)
    assert.equal(fromFields({ time: 'garbage' }), null)
  })
  it('counts returns, delays, bytes and per-sender figures', () => {
    const r = report([
      at({ returned: 1060, domain: 'a.test' }),
      at({ returned: 1600, domain: 'a.test' }),
      at({ domain: 'b.test', phase: 'rcpt', size: 0 }),
      at({ domain: 'b.test', size: 700 }),
    ])
    assert.deepEqual([r.deferred, r.returned, r.share], [4, 2, 0.5])
    assert.deepEqual(r.delay, { p50: 60, p90: 600, max: 600 })
    assert.equal(r.bytesBeforeDataDeferral, 1700)
    assert.deepEqual(r.byDomain.map((d) => [d.sender, d.deferred, d.returned, d.neverReturned]), [['a.test', 2, 2, 0], ['b.test', 2, 0, 2]])
  })
  it('suggests only senders none of whose mail came back, once the window has passed', () => {
    const list = [at({ host: 'never.s.test', time: 1000 }), at({ net: '2001:db8:9::/64', time: 1000, returned: 1100 }), at({ net: '2001:db8:8::/64', time: 1990 })]
    const s = suggestions(list, 2000, 60)
    assert.equal(s.length, 1)
    assert.match(s[0].command, /^mx6ctl green host add never\.s\.test "never retried over IPv4/)
    const later = suggestions(list, 2100, 60)
    assert.deepEqual(later.map((x) => x.command.split(' ').slice(0, 5).join(' ')), ['mx6ctl green host add never.s.test', 'mx6ctl green ip add 2001:db8:8::/64'])
  })
  it('attempts recorded in mode=observe (accepted over IPv6) are counted apart and never suggested', () => {
    const list = [at({ verdict: 'would-defer', host: 'observed.s.test' }), at({ verdict: 'would-fallback', host: 'observed.s.test' }), at({ host: 'real.s.test', returned: 1100 })]
    const r = report(list)
    assert.deepEqual([r.observed, r.deferred, r.returned, r.share], [2, 1, 1, 1])
    assert.deepEqual(suggestions(list, 100_000, 60), [])
    assert.equal(fromFields(toFields(list[0]))?.verdict, 'would-defer')
  })
  it('never puts shell metacharacters from a hostile name into a command', () => {
    const s = suggestions([at({ host: 'x.test;rm -rf /`id`', domain: 'a$(b).test' })], 5000, 60)
    assert.doesNotMatch(s[0].command, /[;`$]/)
    assert.match(s[0].command, /^mx6ctl green host add x\.testrm "/)
  })
})
