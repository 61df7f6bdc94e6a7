// MX6 on the receiver: the same Haraka listens on an IPv4 address, a regular IPv6
// address and an MX6 IPv6 address; only the MX6 address answers "retry over IPv4".
import assert from 'node:assert/strict'
import path from 'node:path'
import type { HarakaServer } from '../support/haraka'
import { PostfixSender } from '../support/postfix'
import { run } from '../support/proc'
import { MX6, useReceiver, V4MX, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { dkimSign, smtpSession, swaks, type Reply } from '../support/smtp'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const KEY = path.join(ROOT, 'test', 'fixtures', 'dkim', 'allowed.test.s1.key')
const URL = 'https://mx6.rcpt.test/register'

function message(subject: string, extraHeaders = ''): string {
  return `From: a@neutral.test\r\nTo: bob@rcpt.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@neutral.test>\r\n${extraHeaders}\r\nHello.\r\n`
}

function sendTo(host: string, peer: string, data: string | Buffer, mailFrom = 'a@neutral.test') {
  return smtpSession({ host, port: 25, localAddress: peer, ehlo: 'client.other.test', mailFrom, rcptTo: ['bob@rcpt.test'], data })
}

/** The Authentication-Results value carried in a fallback reply, unfolded. */
function arFromReply(r: Reply): string {
  const texts = r.lines.map((l) => l.slice(10))
  const start = texts.findIndex((t) => t.startsWith('Authentication-Results: '))
  assert.ok(start > 0, r.lines.join('\n'))
  const end = texts.findIndex((t, i) => i > start && !t.startsWith(' '))
  return texts.slice(start, end < 0 ? undefined : end).join(' ').replace(/^Authentication-Results: /, '')
}

/** The Authentication-Results header of a captured message, unfolded. */
function arFromHeader(raw: string): string {
  const m = /^Authentication-Results: ((?:.*\r\n[ \t].*)*.*)\r\n/m.exec(raw)
  assert.ok(m, 'no Authentication-Results header')
  return m[1].replace(/\r\n[ \t]+/g, ' ')
}

async function parseAr(value: string): Promise<unknown> {
  const r = await run('/usr/bin/python3', [path.join(ROOT, 'test', 'support', 'parse_authres.py')], { input: value })
  assert.equal(r.code, 0, r.stderr)
  return JSON.parse(r.stdout)
}

function assertSafeReply(r: Reply): void {
  for (const l of r.lines) {
    assert.ok(Buffer.byteLength(`${l}\r\n`) <= 512, `reply line of ${l.length} octets`)
    assert.match(l, /^[\x20-\x7e]+$/, `non-printable in: ${JSON.stringify(l)}`)
  }
}

describe('e2e: MX6 fallback reply on the MX6 listener', function () {
  this.timeout(60000)
  const rx = useReceiver({
    listen: [`[${V6MX}]:25`, `[${MX6}]:25`, `${V4MX}:25`],
    ini: `[mx6]\nlisteners=${MX6}\nregistration_url=${URL}`,
    hostList: ['rcpt.test', 'mx6only.test'],
  })
  let redis: RedisServer
  let haraka: HarakaServer
  before(() => ({ redis, haraka } = rx))

  it('the same unknown message: accepted over IPv4, 451 on the regular IPv6 MX, multi-line 550 5.5.7 on MX6', async () => {
    const v4 = await sendTo(V4MX, '192.0.2.20', message('same message'))
    assert.equal(v4.dataEnd?.code, 250)
    const v6 = await sendTo(V6MX, '2001:db8:7::20', message('same message'))
    assert.equal(v6.dataEnd?.code, 451)
    assert.match(v6.dataEnd!.lines[0], /^451 4\.7\.26 /)
    const mx6 = await sendTo(MX6, '2001:db8:7::20', message('same message'))
    assert.equal(mx6.rcpt[0].code, 250, 'MX6 sessions are decided after DATA')
    // The exact reply as a raw SMTP client sees it.
    assert.deepEqual(mx6.dataEnd!.lines, [
      '550-5.5.7 MX6 fallback: not accepted over IPv6; please deliver this message over IPv4 to our regular MX',
      '550-5.5.7 Authentication-Results: mx.rcpt.test;',
      '550-5.5.7  spf=neutral smtp.mailfrom=neutral.test;',
      '550-5.5.7  dmarc=none header.from=neutral.test',
      `550 5.5.7 To be accepted over IPv6, ask at ${URL}`,
    ])
    assertSafeReply(mx6.dataEnd!)
    assert.match(haraka.log(), /\[mx6-receive\] data_post verdict=fallback rule=none/)
  })

  it('accepts an allow-listed message on the MX6 address', async () => {
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::22', 'partner')
    const r = await sendTo(MX6, '2001:db8:7::22', message('allow-listed'))
    assert.equal(r.dataEnd?.code, 250)
    assert.equal(haraka.captured().at(-1)!.meta.local_ip, MX6)
  })

  it('swaks prints the multi-line 550 and exits 26 (DATA failed)', async () => {
    const r = await swaks(['--server', MX6, '--local-interface', '2001:db8:7::23', '--ehlo', 'client.other.test', '--from', 'a@neutral.test', '--to', 'bob@rcpt.test'])
    assert.equal(r.code, 26, r.stdout)
    const got = r.stdout.split('\n').filter((l) => l.startsWith('<** 550'))
    assert.deepEqual(got, [
      '<** 550-5.5.7 MX6 fallback: not accepted over IPv6; please deliver this message over IPv4 to our regular MX',
      '<** 550-5.5.7 Authentication-Results: mx.rcpt.test;',
      '<** 550-5.5.7  spf=neutral smtp.mailfrom=neutral.test;',
      '<** 550-5.5.7  dmarc=none header.from=neutral.test',
      `<** 550 5.5.7 To be accepted over IPv6, ask at ${URL}`,
    ])
  })

  it('Authentication-Results in the reply parses (python3-authres) and equals the header of the accepted variant', async () => {
    const data = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: KEY, from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'signed', body: 'Signed.' })
    const refused = await sendTo(MX6, '2001:db8:7::24', data, 'bounce@neutral.test')
    assert.equal(refused.dataEnd?.code, 550)
    const fromReply = await parseAr(arFromReply(refused.dataEnd!))
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner')
    const accepted = await sendTo(MX6, '2001:db8:7::24', data, 'bounce@neutral.test')
    assert.equal(accepted.dataEnd?.code, 250)
    const fromHeader = await parseAr(arFromHeader(haraka.captured().at(-1)!.raw))
    assert.deepEqual(fromReply, fromHeader)
    const results = (fromReply as { results: Array<[string, string]> }).results.map((x) => `${x[0]}=${x[1]}`)
    assert.deepEqual(results, ['spf=neutral', 'dkim=pass', 'dmarc=none'])
    await redis.cli('HDEL', 'mx6:domain:allow', 'allowed.test')
  })

  it('hostile header values cannot break the reply: ASCII, short lines, still parseable', async () => {
    const sig = `DKIM-Signature: v=1; a=rsa-sha256; d=${'x'.repeat(300)}.test; s=s1\u00e9;x;i=@\u00fc\u00fc.test; h=from; bh=AAAA; b=AAAA\r\n`
    const r = await sendTo(MX6, '2001:db8:7::25', Buffer.from(message('hostile', sig), 'utf8'))
    assert.equal(r.dataEnd?.code, 550, r.transcript)
    assertSafeReply(r.dataEnd!)
    // The 300-octet d= reached the reply, cut to one 200-octet token ("header.d=" + 191).
    assert.ok(r.dataEnd!.lines.some((l) => l.includes(` header.d=${'x'.repeat(191)} `)), r.dataEnd!.lines.join('\n'))
    const parsed = (await parseAr(arFromReply(r.dataEnd!))) as { authserv_id: string }
    assert.equal(parsed.authserv_id, 'mx.rcpt.test')
  })

  it('the regular IPv6 MX keeps answering 4xx (senders ignoring MX6 are never hurt there)', async () => {
    const r = await sendTo(V6MX, '2001:db8:7::26', message('regular'))
    assert.equal(r.dataEnd?.code, 451)
    assert.equal(r.dataEnd?.lines.length, 1)
  })

  describe('with a real Postfix (unaware of MX6)', () => {
    let postfix: PostfixSender
    before(async () => {
      postfix = await PostfixSender.start()
    })
    after(async () => postfix?.stop())

    it('pointed at the MX6 address: hard 5xx, bounced at once', async () => {
      const mid = await postfix.send({ from: 'someone@sender.other.test', to: 'user@mx6only.test', subject: 'to mx6' })
      const d = await postfix.waitFor(mid, 15000, ['bounced', 'sent'])
      assert.equal(d.status, 'bounced', d.lines.join('\n'))
      assert.match(d.dsn, /^5\.5\.7/)
      assert.ok(d.lines.some((l) => l.includes(`host mx6.rcpt.test[${MX6}] said: 550-5.5.7 MX6 fallback`)), d.lines.join('\n'))
    })

    it('pointed at the regular IPv6 MX with the IPv4 MX behind it: delivered over IPv4 in the same attempt', async () => {
      const before = haraka.captured().length
      const mid = await postfix.send({ from: 'someone@sender.other.test', to: 'user@rcpt.test', subject: 'regular MX' })
      const d = await postfix.waitFor(mid)
      assert.equal(d.status, 'sent', d.lines.join('\n'))
      assert.equal(d.relay, `v4mx.rcpt.test[${V4MX}]:25`)
      assert.ok(d.lines.some((l) => l.includes(`host v6mx.rcpt.test[${V6MX}] said: 451 4.7.26`)), d.lines.join('\n'))
      const got = (await haraka.waitForCaptured(before + 1)).slice(before)
      assert.equal(got.length, 1)
      assert.equal(got[0].meta.local_ip, V4MX)
    })
  })
})
