// Reputation providers' DNS allowlists end to end: a real Haraka (spf, dkim, mx6-receive), the
// test bed's dnsmasq serving DNSWL- and DWL-style zones (test/fixtures/dns/dnsmasq.conf), a
// private Redis; dnsmasq's own query log shows what was asked.
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import fs from 'node:fs'
import path from 'node:path'
import { main } from '../../scripts/mx6ctl'
import { poll } from '../support/proc'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import { smtpSession, type SessionResult } from '../support/smtp'

const PROVIDERS = `
[provider:dnswl]
zone=list.dnswl.test
kind=ip
trusted=127.0.*.3
green=127.0.*.1-2
error=127.0.0.255

[provider:dwl]
zone=dwl.dnswl.test
kind=domain
trusted=127.0.*.3
error=127.0.0.255
`
/** The nibble name of 2001:db8:7::b1 under the IPv6 zone, spelled out. */
const B1_NAME = '1.b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.0.0.0.8.b.d.0.1.0.0.2.list.dnswl.test'

let seq = 0
function send(peer: string, mailFrom: string, from = mailFrom): Promise<SessionResult> {
  return smtpSession({
    host: peer.includes(':') ? V6MX : V4MX,
    port: 25,
    localAddress: peer,
    ehlo: 'client.provider.test',
    mailFrom,
    rcptTo: ['bob@rcpt.test'],
    data: `From: ${from}\r\nTo: bob@rcpt.test\r\nSubject: reputation ${++seq}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <reputation-${process.pid}-${seq}@test>\r\n\r\nHello.\r\n`,
  })
}

/** dnsmasq's query log (log-queries), from a mark on. */
const dnsLog = path.join(process.env.MX6_TESTBED_DIR ?? '', 'dnsmasq.log')
const dnsLogSize = () => fs.statSync(dnsLog).size
const dnsLogSince = (mark: number) => fs.readFileSync(dnsLog).subarray(mark).toString()

describe('e2e: reputation providers (DNSWL- and DWL-style zones)', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`, `${V4MX}:25`], ini: PROVIDERS })
  const last = () => rx.haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>

  it('a peer listed at trust 3: trusted, the log and results name provider, zone and answer', async () => {
    const mark = rx.haraka.logSize()
    const r = await send('2001:db8:7::a3', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['trusted', 'dnswl'])
    assert.match(String(last().reason), /2001:db8:7::a3 listed by provider dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted/)
    assert.match(rx.haraka.logSince(mark), /data_post verdict=trusted rule=dnswl: .*\[peer signals: .*providers dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted\]/)
  })

  it('a peer listed at trust 1: green; the same peer with a failing SPF envelope: deferred (the veto)', async () => {
    const ok = await send('2001:db8:7::a1', 'a@neutral.test')
    assert.equal(ok.dataEnd?.code, 250, ok.transcript)
    assert.deepEqual([last().verdict, last().rule], ['green', 'dnswl'])
    const mark = rx.haraka.logSize()
    const vetoed = await send('2001:db8:7::a1', 'a@fail.test')
    assert.equal(vetoed.dataEnd?.code, 451, vetoed.transcript)
    assert.match(rx.haraka.logSince(mark), /data_post verdict=defer rule=auth-fail: failed authentication \(spf=fail fail\.test\).*dnswl does not count with failed authentication/)
  })

  it('trust 0, the provider’s refusal (127.0.0.255) and an unlisted peer: deferred; the refusal is logged once', async () => {
    for (const peer of ['2001:db8:7::a0', '2001:db8:7::aff', '2001:db8:7::a9']) {
      const r = await send(peer, 'a@neutral.test')
      assert.equal(r.dataEnd?.code, 451, `${peer}: ${r.transcript}`)
    }
    const log = rx.haraka.log()
    assert.match(log, /data_post verdict=defer rule=none: .*providers dnswl list\.dnswl\.test 127\.0\.10\.0 -> listed\]/)
    assert.match(log, /providers dnswl list\.dnswl\.test 127\.0\.10\.0 -> listed/)
    assert.match(log, /providers dnswl list\.dnswl\.test -> unlisted/)
    await send('2001:db8:7::aff', 'a@neutral.test')
    const refusals = log.match(/provider dnswl \(list\.dnswl\.test\): error answer 127\.0\.0\.255/g) ?? []
    assert.equal(refusals.length, 1, 'logged once per zone a minute')
    assert.equal((rx.haraka.log().match(/provider dnswl \(list\.dnswl\.test\): error answer/g) ?? []).length, 1)
  })

  it('an IPv4 peer causes no provider query (dnsmasq’s query log), an IPv6 one does', async () => {
    const mark = dnsLogSize()
    const v6 = await send('2001:db8:7::b1', 'a@neutral.test')
    assert.equal(v6.dataEnd?.code, 451, v6.transcript)
    await poll(async () => (dnsLogSince(mark).includes(`query[A] ${B1_NAME}`) ? true : undefined), 5000, 'the IPv6 peer’s query in the DNS log')
    const v4mark = dnsLogSize()
    const v4 = await send('192.0.2.77', 'a@neutral.test')
    assert.equal(v4.dataEnd?.code, 250, v4.transcript)
    // A marker query after the IPv4 transaction: once it is in the log, so is anything before it.
    await smtpMarker()
    await poll(async () => (dnsLogSince(v4mark).includes('marker.dnswl.test') ? true : undefined), 5000, 'the marker query in the DNS log')
    assert.doesNotMatch(dnsLogSince(v4mark), /list\.dnswl\.test|dwl\.dnswl\.test/)
  })

  it('a domain in the DWL-style zone: not looked up while unauthenticated (deferred), trusted once authenticated', async () => {
    const mark = dnsLogSize()
    const unauth = await send('2001:db8:7::c1', 'a@neutral.test', 'a@dwl-listed.test')
    assert.equal(unauth.dataEnd?.code, 451, unauth.transcript)
    const auth = await send('2001:db8:7::c2', 'a@dwl-listed.test')
    assert.equal(auth.dataEnd?.code, 250, auth.transcript)
    assert.deepEqual([last().verdict, last().rule], ['trusted', 'dwl'])
    assert.match(String(last().reason), /dwl-listed\.test listed by provider dwl dwl\.dnswl\.test 127\.0\.2\.3 -> trusted/)
    assert.equal(last().providers, 'dwl-listed.test: dwl dwl.dnswl.test 127.0.2.3 -> trusted')
    await poll(async () => (dnsLogSince(mark).includes('dwl-listed.test.dwl.dnswl.test') ? true : undefined), 5000, 'the DWL query in the DNS log')
    const queries = dnsLogSince(mark).match(/query\[A\] dwl-listed\.test\.dwl\.dnswl\.test/g) ?? []
    assert.equal(queries.length, 1, 'asked once: for the authenticated message only')
  })

  it('mx6ctl explain shows the provider’s answer; mx6ctl stats counts the decisions per provider', async () => {
    const out: string[] = []
    const code = await main(['--config', rx.haraka.dir, 'explain', '--ip', '2001:db8:7::a3', '--mail-from', 'a@neutral.test', '--spf', 'neutral'], { out: (t) => void out.push(t), err: (t) => void out.push(t) })
    assert.equal(code, 0, out.join('\n'))
    assert.match(out.join('\n'), /provider: {2}2001:db8:7::a3: dnswl list\.dnswl\.test 127\.0\.10\.3 -> trusted/)
    assert.match(out.join('\n'), /verdict=trusted rule=dnswl/)
    const stats = await poll(async () => {
      const o: string[] = []
      await main(['--config', rx.haraka.dir, 'stats', '--json'], { out: (t) => void o.push(t), err: () => undefined })
      const s = JSON.parse(o.join('\n')) as { providers: Record<string, Record<string, number>> }
      return s.providers.dwl ? s : undefined
    }, 5000, 'the provider counters')
    assert.deepEqual(stats.providers, { dnswl: { trusted: 1, green: 1 }, dwl: { trusted: 1 } })
  })
})

/** One query dnsmasq logs after everything asked before it. */
async function smtpMarker(): Promise<void> {
  const { promises } = await import('node:dns')
  const r = new promises.Resolver({ timeout: 2000, tries: 1 })
  r.setServers(['127.0.0.53'])
  await r.resolve4('marker.dnswl.test').catch(() => undefined)
}

describe('e2e: a provider zone that never answers', function () {
  this.timeout(60000)
  let silent: dgram.Socket
  before((done) => {
    // The name server dnsmasq forwards hang.dnswl.test to: it takes every query and answers none.
    silent = dgram.createSocket('udp4')
    silent.once('error', done)
    silent.bind(53, '127.0.0.55', () => done())
  })
  after((done) => void silent.close(() => done()))
  const rx = useReceiver({ listen: [`[${V6MX}]:25`], ini: `[green]\ndns_timeout=10000\n[provider:hang]\nzone=hang.dnswl.test\nkind=ip\ntrusted=127.0.0.2\ntimeout=300\n` })

  it('deferred, decided after the zone’s own timeout, not the resolver’s; logged as absent', async () => {
    const r = await send('2001:db8:7::d1', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 451, r.transcript)
    const log = rx.haraka.log()
    assert.match(log, /provider hang \(hang\.dnswl\.test\): no answer within 300 ms for 2001:db8:7::d1; counted as absent/)
    const line = /data_post verdict=defer rule=none: .*providers hang hang\.dnswl\.test -> absent \(no answer within 300 ms\)\] \((\d+\.\d+) ms\)/.exec(log)
    assert.ok(line, log.slice(-3000))
    // The decision waited for the zone at most its 300 ms (it started at connect), far from dns_timeout=10000.
    assert.ok(Number(line[1]) < 5000, `decided in ${line[1]} ms`)
  })
})
