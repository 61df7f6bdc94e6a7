// Trusted vs green with real scanners: clamd (malware, before mx6-receive) and
// spamd via Haraka's spamassassin plugin (content spam filter, after mx6-receive).
import assert from 'node:assert/strict'
import { CLAMD_TEST_SIGNATURE, CLAMD_TEST_VIRUS, ClamdServer, clamdIni } from '../support/clamd'
import type { Captured, HarakaServer } from '../support/haraka'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { smtpSession, type SessionResult } from '../support/smtp'
import { GTUBE, SpamdServer, spamassassinIni } from '../support/spamd'

// The documented order (README): malware scanner before mx6-receive, spam filter after it.
const PLUGINS = ['spf', 'dkim', 'clamd', 'mx6-receive', 'spamassassin', 'rcpt_to.in_host_list', 'queue-capture']
const TRUSTED = '2001:db8:7::50'
const GREEN = '2001:db8:7::10' // forward-confirmed client.other.test
const IPV4 = '192.0.2.50'

let seq = 0
function send(peer: string, body: string): Promise<SessionResult> {
  const v6 = peer.includes(':')
  return smtpSession({
    host: v6 ? V6MX : V4MX,
    port: 25,
    localAddress: peer,
    ehlo: peer === GREEN ? 'client.other.test' : 'x.neutral.test',
    mailFrom: 'a@neutral.test',
    rcptTo: ['bob@rcpt.test'],
    data: [
      'From: a@neutral.test',
      'To: bob@rcpt.test',
      `Subject: filters ${++seq}`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <filters-${process.pid}-${seq}@neutral.test>`,
      '',
      body,
      '',
    ].join('\r\n'),
  })
}

describe('e2e: trusted skips the spam filter, never the malware scan; green gets both', function () {
  this.timeout(90000)
  let clamd: ClamdServer
  let spamd: SpamdServer
  before(async function () {
    this.timeout(30000)
    ;[clamd, spamd] = await Promise.all([ClamdServer.start(), SpamdServer.start()])
  })
  after(async () => {
    await clamd?.stop()
    await spamd?.stop()
  })
  const rx = useReceiver({
    listen: [`[${V6MX}]:25`, `${V4MX}:25`],
    plugins: PLUGINS,
    ini: '[green]\nfcrdns=true',
    config: () => ({ 'clamd.ini': clamdIni(clamd), 'spamassassin.ini': spamassassinIni(spamd) }),
  })
  let redis: RedisServer
  let haraka: HarakaServer
  before(async () => {
    ;({ redis, haraka } = rx)
    await redis.cli('HSET', 'mx6:ip:allow', TRUSTED, 'partner')
  })

  /** The message just accepted (tests send one at a time). */
  const captured = (r: SessionResult): Captured => {
    const c = haraka.captured().at(-1)
    assert.ok(c, `nothing captured:\n${r.transcript}`)
    return c
  }
  const spamHeaders = (c: Captured) => /^X-Spam-(Status|Checker-Version):/m.test(c.raw)
  const verdict = (c: Captured) => (c.meta.results?.['mx6-receive'] as Record<string, unknown>).verdict

  it('trusted IPv6 message with the malware test signature: rejected by clamd', async () => {
    const before = spamd.requestCount()
    const r = await send(TRUSTED, `payload ${CLAMD_TEST_SIGNATURE}`)
    assert.equal(r.dataEnd?.code, 550, r.transcript)
    assert.match(r.dataEnd!.text, new RegExp(CLAMD_TEST_VIRUS.replace(/\./g, '\\.')))
    assert.equal(spamd.requestCount(), before)
  })

  it('clean trusted IPv6 message: accepted without the spam filter (no X-Spam headers, no spamd request)', async () => {
    const before = spamd.requestCount()
    const r = await send(TRUSTED, 'A clean message from a partner.')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    const c = captured(r)
    assert.equal(verdict(c), 'trusted')
    assert.equal(spamHeaders(c), false, c.raw.slice(0, 1500))
    assert.deepEqual((c.meta.results?.clamd as Record<string, unknown>).pass, ['clean'], 'but clamd did scan it')
    await new Promise((res) => setTimeout(res, 500))
    assert.equal(spamd.requestCount(), before)
  })

  it('even GTUBE passes from a trusted peer: the spam filter never sees it', async () => {
    const r = await send(TRUSTED, GTUBE)
    assert.equal(r.dataEnd?.code, 250, r.transcript)
  })

  it('clean green IPv6 message (FCrDNS): accepted and seen by both scanners', async () => {
    const before = spamd.requestCount()
    const r = await send(GREEN, 'A clean message from a forward-confirmed host.')
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    const c = captured(r)
    assert.equal(verdict(c), 'green')
    assert.ok(spamHeaders(c), c.raw.slice(0, 1500))
    assert.deepEqual((c.meta.results?.clamd as Record<string, unknown>).pass, ['clean'])
    assert.equal(await spamd.waitForRequests(before + 1), before + 1)
  })

  it('green: GTUBE is rejected by the spam filter, the test signature by clamd', async () => {
    const spam = await send(GREEN, GTUBE)
    assert.equal(spam.dataEnd?.code, 550, spam.transcript)
    assert.match(spam.dataEnd!.text, /spam/i)
    const virus = await send(GREEN, `payload ${CLAMD_TEST_SIGNATURE}`)
    assert.equal(virus.dataEnd?.code, 550)
  })

  it('IPv4 mail is filtered as before: spam filter headers, malware rejected', async () => {
    const before = spamd.requestCount()
    const r = await send(IPV4, 'A clean message over IPv4.')
    assert.equal(r.dataEnd?.code, 250)
    const c = captured(r)
    assert.equal(c.meta.results?.['mx6-receive'], undefined, 'mx6-receive left it alone')
    assert.ok(spamHeaders(c))
    assert.equal(await spamd.waitForRequests(before + 1), before + 1)
    assert.equal((await send(IPV4, `payload ${CLAMD_TEST_SIGNATURE}`)).dataEnd?.code, 550)
  })
})
