// mx6-learn end to end: a local user's outbound mail teaches the address book, and
// the recipient's authenticated IPv6 reply is then accepted; authenticated IPv4
// mail builds the From domain's history, which then greenlists its IPv6 mail.
import assert from 'node:assert/strict'
import path from 'node:path'
import type { HarakaServer } from '../support/haraka'
import { poll } from '../support/proc'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { dkimSign, smtpSession } from '../support/smtp'

const KEY = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'dkim', 'allowed.test.s1.key')
// Port 587 on loopback is the local users' submission port: relaying allowed there only.
const SUBMISSION = "exports.hook_connect_init = (next, connection) => { if (connection.local.port === 587) connection.relaying = true; next() }"

function message(from: string, to: string, subject: string): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@test>\r\n\r\nHello.\r\n`
}

describe('e2e: mx6-learn', function () {
  this.timeout(60000)
  const rx = useReceiver({
    listen: [`[${V6MX}]:25`, `${V4MX}:25`, '127.0.0.1:587'],
    plugins: ['spf', 'dkim', 'mx6-receive', 'rcpt_to.in_host_list', 'mx6-learn', 'queue-capture'],
    pluginFiles: { submission: SUBMISSION },
    ini: '[green]\nhistory_min_count=2\nhistory_min_days=0',
    // Outbound delivery is not under test here: keep what local users send in the queue.
    config: () => ({ 'outbound.ini': 'disabled=true\n', 'mx6-learn.ini': `[redis]\nport=${rx.redis.port}\n` }),
  })
  let redis: RedisServer
  let haraka: HarakaServer
  before(() => ({ redis, haraka } = rx))

  const learnLine = (re: RegExp) => poll(() => (re.test(haraka.log()) ? true : undefined), 5000, `log ${re}`)

  it('a reply from an unknown correspondent over IPv6 is deferred at first', async () => {
    const r = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::61', ehlo: 'x.other.test', mailFrom: 'friend@other.test', rcptTo: ['alice@rcpt.test'], data: message('friend@other.test', 'alice@rcpt.test', 'before') })
    assert.equal(r.dataEnd?.code, 451)
  })

  it('outbound mail of the local user teaches her book (only the external recipient)', async () => {
    const r = await smtpSession({ host: '127.0.0.1', port: 587, ehlo: 'laptop.rcpt.test', mailFrom: 'alice+out@rcpt.test', rcptTo: ['Friend@Other.test', 'bob@rcpt.test'], data: message('alice@rcpt.test', 'friend@other.test', 'outbound') })
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    await learnLine(/\[mx6-learn\] learned: book of alice@rcpt\.test \+= friend@other\.test/)
    assert.equal(await redis.cli('SMEMBERS', 'mx6:book:alice@rcpt.test'), 'friend@other.test')
    const seen = Number(await redis.cli('ZSCORE', 'mx6:bookseen:alice@rcpt.test', 'friend@other.test'))
    assert.ok(Math.abs(seen - Date.now() / 1000) < 60)
    assert.ok(Number(await redis.cli('TTL', 'mx6:bookseen:alice@rcpt.test')) > 364 * 86400)
  })

  it('learned entries not written to for max_age_days age out; hand-made entries stay', async () => {
    const old = Math.floor(Date.now() / 1000) - 400 * 86400
    await redis.cli('SADD', 'mx6:book:carol@rcpt.test', 'stale@other.test', 'manual@other.test')
    await redis.cli('ZADD', 'mx6:bookseen:carol@rcpt.test', String(old), 'stale@other.test')
    const r = await smtpSession({ host: '127.0.0.1', port: 587, ehlo: 'laptop.rcpt.test', mailFrom: 'carol@rcpt.test', rcptTo: ['fresh@other.test'], data: message('carol@rcpt.test', 'fresh@other.test', 'carol') })
    assert.equal(r.dataEnd?.code, 250)
    await learnLine(/book of carol@rcpt\.test: 1 learned entries aged out or over max_entries/)
    assert.deepEqual((await redis.cli('SMEMBERS', 'mx6:book:carol@rcpt.test')).split('\n').sort(), ['fresh@other.test', 'manual@other.test'])
    assert.equal(await redis.cli('ZSCORE', 'mx6:bookseen:carol@rcpt.test', 'stale@other.test'), '')
  })

  it('the authenticated reply over IPv6 is now accepted through the book', async () => {
    const r = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::61', ehlo: 'x.other.test', mailFrom: 'friend@other.test', rcptTo: ['alice@rcpt.test'], data: message('friend@other.test', 'alice@rcpt.test', 'reply') })
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.equal((haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>).rule, 'book')
  })

  it('a spoofed reply (SPF fail for the learned address) is still deferred', async () => {
    await redis.cli('SADD', 'mx6:book:alice@rcpt.test', 'friend@fail.test')
    const r = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::62', ehlo: 'x.fail.test', mailFrom: 'friend@fail.test', rcptTo: ['alice@rcpt.test'], data: message('friend@fail.test', 'alice@rcpt.test', 'spoof') })
    assert.equal(r.dataEnd?.code, 451)
  })

  it('authenticated IPv4 mail builds the From domain history, which then greenlists its IPv6 mail', async () => {
    for (let i = 0; i < 2; i++) {
      const data = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: KEY, from: 'news@allowed.test', to: 'bob@rcpt.test', subject: `ipv4 ${i}`, body: 'Over IPv4.' })
      const r = await smtpSession({ host: V4MX, port: 25, localAddress: '192.0.2.61', ehlo: 'out.allowed.test', mailFrom: 'news@allowed.test', rcptTo: ['bob@rcpt.test'], data })
      assert.equal(r.dataEnd?.code, 250, r.transcript)
    }
    await learnLine(/learned: IPv4 history of allowed\.test \(From allowed\.test authenticated via allowed\.test\)/)
    await poll(async () => ((await redis.cli('HGET', 'mx6:hist:allowed.test', 'count')) === '2' ? true : undefined), 5000, 'history count 2')
    const first = Number(await redis.cli('HGET', 'mx6:hist:allowed.test', 'first'))
    assert.ok(Math.abs(first - Date.now() / 1000) < 60)
    const data = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: KEY, from: 'news@allowed.test', to: 'bob@rcpt.test', subject: 'ipv6', body: 'Over IPv6.' })
    const r = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::63', ehlo: 'out.allowed.test', mailFrom: 'bounce@neutral.test', rcptTo: ['bob@rcpt.test'], data })
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    const res = haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>
    assert.deepEqual([res.verdict, res.rule], ['green', 'history'])
  })

  it("IPv4 history follows the From domain's DMARC record: a relaxed-aligned DKIM pass under adkim=s teaches nothing, a strict-aligned one does", async () => {
    // strict.test publishes p=reject adkim=s aspf=s; mail.strict.test has a DKIM key too.
    const sign = (domain: string, subject: string) => dkimSign({ domain, selector: 's1', keyFile: KEY, from: 'news@strict.test', to: 'bob@rcpt.test', subject, body: 'Over IPv4.' })
    const send = async (data: Buffer) => {
      const r = await smtpSession({ host: V4MX, port: 25, localAddress: '192.0.2.64', ehlo: 'out.strict.test', mailFrom: 'news@strict.test', rcptTo: ['bob@rcpt.test'], data })
      assert.equal(r.dataEnd?.code, 250, r.transcript)
    }
    await send(await sign('mail.strict.test', 'relaxed'))
    await learnLine(/no IPv4 history learned: dmarc=fail \(p=REJECT\) header\.from=strict\.test/)
    assert.equal(await redis.cli('EXISTS', 'mx6:hist:strict.test'), '0')
    await send(await sign('strict.test', 'strict'))
    await learnLine(/learned: IPv4 history of strict\.test \(From strict\.test authenticated via strict\.test \(dmarc=pass \(p=REJECT\) header\.from=strict\.test\)\)/)
    assert.equal(await redis.cli('HGET', 'mx6:hist:strict.test', 'count'), '1')
  })

  it('unauthenticated IPv4 mail and IPv6 mail teach no history', async () => {
    const r = await smtpSession({ host: V4MX, port: 25, localAddress: '192.0.2.62', ehlo: 'x.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: message('a@neutral.test', 'bob@rcpt.test', 'unauth') })
    assert.equal(r.dataEnd?.code, 250)
    assert.equal(await redis.cli('EXISTS', 'mx6:hist:neutral.test'), '0')
    assert.equal(await redis.cli('HGET', 'mx6:hist:allowed.test', 'count'), '2', 'the IPv6 message did not count')
  })
})
