// The interop matrix's readings of each sender's log, and its tables, on lines the real MTAs
// wrote in the test bed (abridged).
import assert from 'node:assert/strict'
import { eximView, harakaView, opensmtpdView, postfixView } from '../support/interop/logs'
import type { MatrixResult } from '../support/interop/matrix'
import type { Outcome } from '../support/interop/scenario'
import { formatSummary, formatTable } from '../support/interop/table'

const FROM = 'exim.rcpt-pref.1.17389@dsn.test'
const EXIM = `2026-12-07 15:10:29.291 [17462] 1xaaMH-0004Xe-0v <= ${FROM} H=(submit.other.test) [2001:db8:9::1]:44094 P=esmtp S=445 id=x@sender.other.test
2026-12-07 15:10:29.356 [17464] 1xaaMH-0004Xe-0v H=v6mx.rcpt.test [2001:db8:25::25]:25 SMTP error from remote mail server after RCPT TO:<user@rcpt.test>: 451 4.7.26 Not accepted over IPv6
2026-12-07 15:10:29.416 [17463] 1xaaMH-0004Xe-0v == user@rcpt.test R=dnslookup T=remote_smtp defer (-18) H=v4mx.rcpt.test [198.51.100.25]:25: Remote host closed connection in response to end of data
2026-12-07 15:10:30.400 [17466] 1xaaMH-0004Xe-0v => user@rcpt.test F=<${FROM}> R=dnslookup T=remote_smtp H=v4mx.rcpt.test [198.51.100.25]:25 C="250 Message Queued"
2026-12-07 15:10:30.401 [17466] 1xaaMH-0004Xe-0v Completed QT=1.115s
2026-12-07 15:11:00.000 [17470] 1xaaMI-0004Xf-0a <= other@dsn.test H=(submit.other.test) [2001:db8:9::1]:44096 P=esmtp S=445
2026-12-07 15:11:00.100 [17471] 1xaaMI-0004Xf-0a ** user@mx6only.test R=dnslookup T=remote_smtp H=mx6.rcpt.test [2001:db8:25::6]:25: SMTP error from remote mail server after end of data: 550-5.5.7 MX6 fallback
`

const OSMTPD_FROM = 'opensmtpd.mx6-550.1.27129@dsn.test'
const OPENSMTPD = `2e3ba3ef17eb4203 smtp message msgid=dba074ba size=401 nrcpt=1 proto=ESMTP
2e3ba3ef17eb4203 smtp envelope evpid=dba074baffb015cd from=<${OSMTPD_FROM}> to=<user@mx6only.test>
2e3ba3f207b7c5d3 mta delivery evpid=dba074baffb015cd from=<${OSMTPD_FROM}> to=<user@mx6only.test> rcpt=<-> source="[2001:db8:9::2]" relay="[2001:db8:25::6] (mx6.rcpt.test)" delay=1s result="PermFail" stat="550-5.5.7 MX6 fallback"
2e3ba3f3a479c3ee smtp envelope evpid=4d0a197bf1aff261 from=<> to=<${OSMTPD_FROM}>
8adfd9643f396882 mta delivery evpid=7fcad10e5a126f8f from=<x@dsn.test> to=<user@rcpt.test> rcpt=<-> delay=0s result="TempFail" stat="451 4.7.26"
`

const HARAKA_FROM = 'haraka.rcpt-pref.17.30806@dsn.test'
const HARAKA = `2026-12-07T15:26:42.443Z [NOTICE] [E280A752-C7F4-4B05-A60E-B301FB6A5402.1] [core] sender <${HARAKA_FROM}> code=CONT msg=""
2026-12-07T15:26:42.451Z [INFO] [-] [outbound] Transaction delivery for domain: rcpt.test
2026-12-07T15:26:42.502Z [NOTICE] [E280A752-C7F4-4B05-A60E-B301FB6A5402.1.1] [outbound] recipient <user@rcpt.test> deferred: 451 4.7.26 Not accepted over IPv6
2026-12-07T15:26:42.503Z [INFO] [E280A752-C7F4-4B05-A60E-B301FB6A5402.1.1] [outbound] Temp failing 1796657202451_1796657202451_0_31620_VEZq4I_1_vm for 5 seconds: Some recipients temp failed: <user@rcpt.test>
2026-12-07T15:26:48.378Z [INFO] [E280A752-C7F4-4B05-A60E-B301FB6A5402.1.1] [outbound] Temp failing 1796657202451_1796657207503_1_31620_VEZq4I_2_vm for 5 seconds: Some recipients temp failed: <user@rcpt.test>
2026-12-07T15:27:00.000Z [NOTICE] [11111111-2222-3333-4444-555555555555.1] [core] sender <other@dsn.test> code=CONT msg=""
2026-12-07T15:27:00.100Z [INFO] [11111111-2222-3333-4444-555555555555.1.1] [outbound] bouncing mail: Upstream error: 550 5.5.7 MX6 fallback
`

const POSTFIX = `Dec  7 15:12:08 sender postfix/cleanup[1]: 4XkA1B2C3D: message-id=<m1@sender.other.test>
Dec  7 15:12:08 sender postfix/smtp[2]: 4XkA1B2C3D: to=<user@rcpt.test>, relay=v6mx.rcpt.test[2001:db8:25::25]:25, delay=0, dsn=4.7.26, status=deferred (host said: 451)
Dec  7 15:12:09 sender postfix/smtp[2]: 4XkA1B2C3D: to=<user@rcpt.test>, relay=v4mx.rcpt.test[198.51.100.25]:25, delay=1, dsn=2.0.0, status=sent (250 Ok)
Dec  7 15:12:10 sender postfix/cleanup[1]: 4XkA1B2C3E: message-id=<m2@sender.other.test>
Dec  7 15:12:10 sender postfix/smtp[2]: 4XkA1B2C3E: to=<user@mx6only.test>, relay=mx6.rcpt.test[2001:db8:25::6]:25, dsn=5.5.7, status=bounced (host said: 550)
`

describe('interop: what each sender logged about one message', () => {
  it('Exim: an attempt that ended deferred, then delivery; a failure is a bounce', () => {
    assert.deepEqual(eximView(EXIM, FROM), { deferrals: 1, bounced: false })
    assert.deepEqual(eximView(EXIM, 'other@dsn.test'), { deferrals: 0, bounced: true })
    assert.deepEqual(eximView(EXIM, 'unknown@dsn.test'), { deferrals: 0, bounced: false })
  })
  it('OpenSMTPD: deliveries by envelope id; the DSN envelope (from=<>) is not the message', () => {
    assert.deepEqual(opensmtpdView(OPENSMTPD, OSMTPD_FROM), { deferrals: 0, bounced: true })
    assert.deepEqual(opensmtpdView(OPENSMTPD, 'x@dsn.test'), { deferrals: 0, bounced: false }, 'no envelope line: unknown')
  })
  it('Haraka outbound: "Temp failing" per deferral, "bouncing mail" for a bounce, by transaction uuid', () => {
    assert.deepEqual(harakaView(HARAKA, HARAKA_FROM), { deferrals: 2, bounced: false })
    assert.deepEqual(harakaView(HARAKA, 'other@dsn.test'), { deferrals: 0, bounced: true })
  })
  it('Postfix: status=deferred per attempt, status=bounced, by Message-ID', () => {
    assert.deepEqual(postfixView(POSTFIX, '<m1@sender.other.test>'), { deferrals: 1, bounced: false })
    assert.deepEqual(postfixView(POSTFIX, '<m2@sender.other.test>'), { deferrals: 0, bounced: true })
  })
})

const outcome = (o: Partial<Outcome>): Outcome => ({ sender: 'exim', scenario: 'rcpt-pref', delivered: false, via: '', retries: 0, delay: 0.2, bodyCrossings: 1, ipv6Tries: 1, dsn: false, delayWarnings: 0, copies: 0, note: '', ...o })

describe('interop: the tables', () => {
  const r: MatrixResult = {
    versions: { exim: '4.96', opensmtpd: '6.8.0p2' },
    scenarios: [
      { id: 'rcpt-pref', title: '4xx at RCPT' },
      { id: 'mx6-550', title: '550 5.5.7' },
    ],
    outcomes: [
      outcome({ delivered: true, via: 'IPv4 MX', copies: 1 }),
      outcome({ scenario: 'mx6-550', dsn: true }),
      outcome({ sender: 'opensmtpd', ipv6Tries: 8, retries: 8, bodyCrossings: 0, note: 'neither delivered nor bounced within 15 s' }),
      outcome({ sender: 'opensmtpd', scenario: 'mx6-550', dsn: true }),
    ],
  }
  it('summary: one row per sender with its version, one short cell per scenario', () => {
    assert.deepEqual(formatSummary(r).split('\n'), [
      '| sender | rcpt-pref | mx6-550 |',
      '| --- | --- | --- |',
      '| exim 4.96 | IPv4, same attempt | bounce, no loop |',
      '| opensmtpd 6.8.0p2 | queued: IPv6 only (8 tries) | bounce, no loop |',
    ])
  })
  it('details: one row per outcome, then the scenario titles', () => {
    const t = formatTable(r).split('\n')
    assert.equal(t[2], '| exim 4.96 | rcpt-pref | delivered via IPv4 MX | same attempt | 0.2 s | 1 | 1 | no |')
    assert.equal(t[4], '| opensmtpd 6.8.0p2 | rcpt-pref | not delivered | neither delivered nor bounced within 15 s; 8 retries | 0.2 s | 8 | 0 | no |')
    assert.ok(t.includes('- `mx6-550`: 550 5.5.7'))
  })
})
