// The trust model end to end: a real Haraka (spf, dkim, mx6-receive), real SPF and PTR/AAAA
// answers from the test DNS, a private Redis; and mode=observe with a real spamd.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { main } from '../../scripts/mx6ctl'
import { poll } from '../support/proc'
import { useReceiver, V6MX } from '../support/receiver'
import { smtpSession, type SessionResult } from '../support/smtp'
import { SpamdServer, spamassassinIni } from '../support/spamd'

// 2001:db8:7::10 has forward-confirmed reverse DNS: client.other.test.
const FCRDNS_PEER = '2001:db8:7::10'
const AUTH_FAIL_TEXT = 'Authentication failed (SPF, DKIM or DMARC): not accepted over IPv6; please deliver via our IPv4 MX'

let seq = 0
function send(peer: string, helo: string, mailFrom: string, body = 'Hello.'): Promise<SessionResult> {
  return smtpSession({
    host: V6MX,
    port: 25,
    localAddress: peer,
    ehlo: helo,
    mailFrom,
    rcptTo: ['bob@rcpt.test'],
    data: `From: ${mailFrom}\r\nTo: bob@rcpt.test\r\nSubject: trust ${++seq}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <trust-${process.pid}-${seq}@test>\r\n\r\n${body}\r\n`,
  })
}

async function ctlJson(...argv: string[]): Promise<Record<string, unknown>> {
  const out: string[] = []
  const code = await main([...argv, '--json'], { out: (t) => void out.push(t), err: () => undefined })
  assert.equal(code, 0, out.join('\n'))
  return JSON.parse(out.join('\n')) as Record<string, unknown>
}

describe('e2e: failed authentication vetoes forward-confirmed reverse DNS (fcrdns=true)', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`], ini: '[green]\nfcrdns=true' })
  const last = () => rx.haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>

  it('the signal itself works: FCrDNS + matching HELO + a neutral SPF envelope is green', async () => {
    const r = await send(FCRDNS_PEER, 'client.other.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['green', 'fcrdns'])
  })

  it('the same peer with an envelope whose domain publishes -all: deferred with the failed-authentication text', async () => {
    const mark = rx.haraka.logSize()
    const r = await send(FCRDNS_PEER, 'client.other.test', 'a@fail.test')
    assert.equal(r.rcpt[0].code, 250, 'undecided=wait: decided after DATA')
    assert.equal(r.dataEnd?.code, 451, r.transcript)
    assert.equal(r.dataEnd?.lines.join('\n'), `451 4.7.26 ${AUTH_FAIL_TEXT}`)
    assert.match(rx.haraka.logSince(mark), /data_post verdict=defer rule=auth-fail: failed authentication \(spf=fail fail\.test\); .*fcrdns does not count with failed authentication \(forward-confirmed client\.other\.test matches HELO\)/)
  })

  it('the same peer in host:green (an operator entry): accepted, and the log and results say it overrode the failure', async () => {
    await rx.redis.cli('HSET', 'mx6:host:green', 'client.other.test', 'forwarder without SRS')
    const mark = rx.haraka.logSize()
    const r = await send(FCRDNS_PEER, 'client.other.test', 'a@fail.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['green', 'host:green'])
    assert.equal(last().override, 'spf=fail fail.test overridden by operator entry host:green client.other.test')
    assert.match(rx.haraka.logSince(mark), /verdict=green rule=host:green: .*; spf=fail fail\.test overridden by operator entry host:green client\.other\.test/)
  })
})

describe('e2e: FCrDNS is opt-in (the shipped default)', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`] })

  it('FCrDNS alone, with a matching HELO and a neutral envelope: deferred', async () => {
    const r = await send(FCRDNS_PEER, 'client.other.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 451, r.transcript)
    assert.match(rx.haraka.log(), /data_post verdict=defer rule=none: .*\[peer signals: fcrdns pass \(forward-confirmed client\.other\.test matches HELO\)/)
  })
})

describe('e2e: mode=observe records, changes nothing; back to enforce on reload', function () {
  this.timeout(90000)
  let spamd: SpamdServer
  before(async function () {
    this.timeout(30000)
    spamd = await SpamdServer.start()
  })
  after(async () => spamd?.stop())
  const rx = useReceiver({
    listen: [`[${V6MX}]:25`],
    plugins: ['spf', 'dkim', 'mx6-receive', 'spamassassin', 'rcpt_to.in_host_list', 'queue-capture'],
    ini: '[main]\nmode=observe',
    config: () => ({ 'spamassassin.ini': spamassassinIni(spamd) }),
  })
  const last = () => rx.haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>

  it('an unknown IPv6 peer is accepted; the log and results say would-defer; mx6ctl stats counts it apart', async () => {
    const mark = rx.haraka.logSize()
    const r = await send('2001:db8:7::20', 'x.neutral.test', 'someone@neutral.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['would-defer', 'none'])
    assert.match(rx.haraka.logSince(mark), /\[mx6-receive\] data_post verdict=would-defer rule=none: From someone@neutral\.test not relaxed-aligned/)
    // Counters are written once a second.
    const stats = await poll(async () => {
      const s = await ctlJson('--config', rx.haraka.dir, 'stats')
      return (s.verdicts as Record<string, number>)['would-defer'] ? s : undefined
    }, 5000, 'the would-defer counter')
    const verdicts = stats.verdicts as Record<string, number>
    assert.equal(verdicts['would-defer'], 1, JSON.stringify(stats))
    assert.equal(verdicts.defer, undefined)
    const followup = await ctlJson('--config', rx.haraka.dir, 'followup')
    assert.deepEqual([followup.observed, followup.deferred], [1, 0])
  })

  it('a trusted message still reaches the spam filter', async () => {
    await rx.redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::50', 'partner')
    const before = spamd.requestCount()
    const r = await send('2001:db8:7::50', 'x.neutral.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.equal(last().verdict, 'trusted')
    assert.equal(await spamd.waitForRequests(before + 1), before + 1)
    assert.match(rx.haraka.captured().at(-1)!.raw, /^X-Spam-Status: /m)
  })

  it('mode=enforce in the ini, no restart: the next unknown IPv6 peer is deferred again', async () => {
    const ini = path.join(rx.haraka.dir, 'config', 'mx6-receive.ini')
    const mark = rx.haraka.logSize()
    fs.writeFileSync(ini, fs.readFileSync(ini, 'utf8').replace('mode=observe', 'mode=enforce'))
    // haraka-config reloads a changed file 5 s after the change (its "sedation" delay) and says so.
    await poll(() => (rx.haraka.logSince(mark).includes('Reloaded file: ') ? true : undefined), 20000, 'the reload of mx6-receive.ini', 100)
    const r = await send('2001:db8:7::21', 'x.neutral.test', 'someone@neutral.test')
    assert.equal(r.dataEnd?.code, 451, r.transcript)
    assert.match(rx.haraka.log(), /data_post verdict=defer rule=none: From someone@neutral\.test/)
  })
})
