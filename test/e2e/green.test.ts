// Greenlisting end to end: a real Haraka, real PTR/AAAA/TXT answers from the test DNS.
import assert from 'node:assert/strict'
import { DnsProxy } from '../support/dnsproxy'
import type { HarakaServer } from '../support/haraka'
import { useReceiver, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { smtpSession, type SessionResult } from '../support/smtp'

function send(peer: string, helo: string, mailFrom: string): Promise<SessionResult> {
  return smtpSession({
    host: V6MX,
    port: 25,
    localAddress: peer,
    ehlo: helo,
    mailFrom,
    rcptTo: ['bob@rcpt.test'],
    data: `From: ${mailFrom}\r\nTo: bob@rcpt.test\r\nSubject: green ${peer}\r\nMessage-ID: <g${Date.now()}${Math.random()}@test>\r\n\r\nHello.\r\n`,
  })
}

describe('e2e: greenlisting signals in mx6-receive', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`], ini: '[green]\nfcrdns=true\nasn=true\nasn_zone=origin6.asn.test' })
  let redis: RedisServer
  let haraka: HarakaServer
  before(() => ({ redis, haraka } = rx))

  const last = () => haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>

  it('FCrDNS: PTR resolves back and equals HELO -> green', async () => {
    const r = await send('2001:db8:7::10', 'client.other.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['green', 'fcrdns'])
    assert.match(haraka.log(), /peer signals: fcrdns pass \(forward-confirmed client\.other\.test matches HELO\)/)
  })

  it('FCrDNS with another HELO name: no basis, deferred', async () => {
    const r = await send('2001:db8:7::10', 'other-name.neutral.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 451)
  })

  it('host:green matches the forward-confirmed name of a forwarder even if HELO differs', async () => {
    assert.equal((await send('2001:db8:7::41', 'whatever.neutral.test', 'a@neutral.test')).dataEnd?.code, 451)
    await redis.cli('HSET', 'mx6:host:green', 'fwd.test', 'strict forwarder')
    const r = await send('2001:db8:7::41', 'whatever.neutral.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250)
    assert.deepEqual([last().verdict, last().rule], ['green', 'host:green'])
  })

  it('asn:green from the origin AS zone', async () => {
    assert.equal((await send('2001:db8:7::42', 'x.neutral.test', 'a@neutral.test')).dataEnd?.code, 451)
    await redis.cli('HSET', 'mx6:asn:green', '64500', 'strict abuse handling')
    const r = await send('2001:db8:7::42', 'x.neutral.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250)
    assert.deepEqual([last().verdict, last().rule], ['green', 'asn:green'])
    assert.match(String(last().green_signals), /ip:green=miss host:green=n\/a asn:green=hit\(64500\)/)
  })

  it('ip:green', async () => {
    await redis.cli('HSET', 'mx6:ip:green', '2001:db8:7::43', 'never retries after 4xx')
    const r = await send('2001:db8:7::43', 'x.neutral.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250)
    assert.deepEqual([last().verdict, last().rule], ['green', 'ip:green'])
  })

  it('IPv4 history of an authenticated From domain -> green; too little history -> deferred', async () => {
    const now = Math.floor(Date.now() / 1000)
    await redis.cli('HSET', 'mx6:hist:histo.test', 'count', '3', 'first', String(now - 100 * 86400), 'last', String(now - 86400))
    assert.equal((await send('2001:db8:7::45', 'x.histo.test', 'news@histo.test')).dataEnd?.code, 451)
    await redis.cli('HSET', 'mx6:hist:histo.test', 'count', '40')
    const r = await send('2001:db8:7::45', 'x.histo.test', 'news@histo.test')
    assert.equal(r.dataEnd?.code, 250)
    assert.deepEqual([last().verdict, last().rule], ['green', 'history'])
  })

  it('last-resort SPF: a guessed record authenticates a domain without SPF, and says so', async () => {
    await redis.cli('HSET', 'mx6:domain:allow', 'nospf.test', 'partner without SPF')
    assert.equal((await send('2001:db8:7::44', 'x.nospf.test', 'a@nospf.test')).dataEnd?.code, 451, 'no SPF, no guess: not authenticated')
    await redis.cli('HSET', 'mx6:spf:guess', 'nospf.test', 'v=spf1 ip6:2001:db8:7::/64 -all')
    const r = await send('2001:db8:7::44', 'x.nospf.test', 'a@nospf.test')
    assert.equal(r.dataEnd?.code, 250)
    assert.deepEqual([last().verdict, last().rule], ['trusted', 'domain:allow'])
    assert.match(String(last().spf_guess), /^pass nospf\.test \(redis: v=spf1 ip6:2001:db8:7::\/64 -all\)/)
    assert.match(haraka.log(), /last-resort SPF for nospf\.test \(redis record "v=spf1 ip6:2001:db8:7::\/64 -all"\): pass/)
    // A guess that does not cover the peer fails like a real SPF record would.
    await redis.cli('HSET', 'mx6:spf:guess', 'nospf.test', 'v=spf1 ip6:2001:db8:8::/64 -all')
    assert.equal((await send('2001:db8:7::44', 'x.nospf.test', 'a@nospf.test')).dataEnd?.code, 451)
    assert.match(haraka.log(), /last-resort SPF for nospf\.test \(redis record "v=spf1 ip6:2001:db8:8::\/64 -all"\): fail/)
  })
})

describe('e2e: greenlisting when DNS does not answer', function () {
  this.timeout(60000)
  let proxy: DnsProxy
  before(async () => {
    proxy = await DnsProxy.start()
  })
  after(async () => proxy?.stop())
  const rx = useReceiver({ listen: [`[${V6MX}]:25`], ini: '[green]\nfcrdns=true\ndns_servers=127.0.0.54\ndns_timeout=300' })

  it('PTR lookups time out: the signal is absent and the peer is deferred, in bounded time', async () => {
    proxy.mode = 'drop'
    const t0 = Date.now()
    const r = await send('2001:db8:7::10', 'client.other.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 451, r.transcript)
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
    assert.ok(proxy.dropped > 0)
    assert.match(rx.haraka.log(), /peer signals: fcrdns err \(PTR lookup: PTR [0-9a-f.]+ip6\.arpa: /)
  })

  it('DNS answers again: the next connection gets its green basis', async () => {
    proxy.mode = 'forward'
    const r = await send('2001:db8:7::10', 'client.other.test', 'a@neutral.test')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
  })
})
