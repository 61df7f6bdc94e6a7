// Hostile senders end to end: a spoofing matrix against an allow-listed domain, and
// address-book probing without authentication.
import assert from 'node:assert/strict'
import path from 'node:path'
import type { HarakaServer } from '../support/haraka'
import { useReceiver, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { dkimSign, smtpSession, type SessionResult } from '../support/smtp'

const KEYS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'dkim')

function plain(from: string): string {
  return `From: ${from}\r\nTo: bob@rcpt.test\r\nSubject: spoof\r\nMessage-ID: <spoof.${Date.now()}.${Math.random()}@test>\r\n\r\nPay the invoice.\r\n`
}

function send(peer: string, mailFrom: string, data: string | Buffer, rcpt = 'bob@rcpt.test'): Promise<SessionResult> {
  return smtpSession({ host: V6MX, port: 25, localAddress: peer, ehlo: 'x.neutral.test', mailFrom, rcptTo: [rcpt], data })
}

describe('e2e: spoofing matrix against an allow-listed domain (none is trusted)', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`] })
  let redis: RedisServer
  let haraka: HarakaServer
  before(async () => {
    ;({ redis, haraka } = rx)
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner', 'strict.test', 'partner', 'quarantine.test', 'partner', 'pnone.test', 'partner')
  })

  const tamper = async (): Promise<string> => {
    const s = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'spoof', body: 'Pay 10.' })
    return s.toString('latin1').replace('Pay 10.', 'Pay 10000.')
  }
  const otherSigned = async (): Promise<Buffer> => dkimSign({ domain: 'other.test', selector: 's1', keyFile: path.join(KEYS, 'other.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'spoof', body: 'Pay.' })

  const cases: Array<[string, string, () => Promise<string | Buffer>, RegExp]> = [
    ['From of the allowed domain, no DKIM, envelope of another domain (SPF pass there)', 'x@other.test', async () => plain('ceo@allowed.test'), /spf=pass/],
    ['From of the allowed domain with a failing DKIM signature', 'x@neutral.test', tamper, /dkim/],
    ['From of the allowed domain signed by another domain', 'x@neutral.test', otherSigned, /dkim pass=other\.test/],
    ['envelope of a domain with SPF fail', 'ceo@fail.test', async () => plain('ceo@allowed.test'), /spf=fail/],
    ['envelope with SPF softfail', 'ceo@softfail.test', async () => plain('ceo@allowed.test'), /spf=softfail/],
    ['envelope with SPF neutral', 'ceo@neutral.test', async () => plain('ceo@allowed.test'), /spf=neutral/],
    ['envelope with no SPF record (none)', 'ceo@nospf.test', async () => plain('ceo@allowed.test'), /spf=none/],
    ['envelope with an SPF PermError', 'ceo@permerror.test', async () => plain('ceo@allowed.test'), /spf=permerror/],
    ['envelope with an SPF TempError', 'ceo@temperror.test', async () => plain('ceo@allowed.test'), /spf=temperror/],
    [
      'From of the allowed domain, DKIM key lookup SERVFAILs (signature claims d=temperror.test)',
      'x@neutral.test',
      async () => dkimSign({ domain: 'temperror.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'spoof', body: 'Pay.' }),
      /dkim pass=none/,
    ],
    // DMARC: each domain publishes adkim=s aspf=s; an envelope of its own subdomain passes SPF
    // and would be relaxed-aligned, but the domain's record asks for strict. Whatever p= says,
    // a DMARC fail is failed authentication.
    ['DMARC p=reject: envelope of a subdomain (SPF pass, not strict-aligned)', 'x@mail.strict.test', async () => plain('ceo@strict.test'), /rule=auth-fail: .*\[dmarc=fail \(p=REJECT\) header\.from=strict\.test\]/],
    ['DMARC p=quarantine: envelope of a subdomain (SPF pass, not strict-aligned)', 'x@mail.quarantine.test', async () => plain('ceo@quarantine.test'), /rule=auth-fail: .*\[dmarc=fail \(p=QUARANTINE\) header\.from=quarantine\.test\]/],
    ['DMARC p=none: envelope of a subdomain (SPF pass, not strict-aligned)', 'x@mail.pnone.test', async () => plain('ceo@pnone.test'), /rule=auth-fail: .*\[dmarc=fail \(p=NONE\) header\.from=pnone\.test\]/],
    ['no DMARC record: From of the allowed domain, envelope of another domain (SPF pass there)', 'x@other.test', async () => plain('ceo@allowed.test'), /rule=none: .*\[dmarc=none header\.from=allowed\.test\]/],
  ]
  let n = 0x100
  for (const [name, mailFrom, data, why] of cases) {
    it(`${name}: deferred`, async () => {
      const peer = `2001:db8:7::${(n++).toString(16)}`
      const r = await send(peer, mailFrom, await data())
      assert.equal(r.dataEnd?.code ?? r.rcpt[0].code, 451, r.transcript)
      const line = haraka.log().split('\n').filter((l) => l.includes('[mx6-receive] data_post verdict=defer')).at(-1) ?? ''
      assert.match(line, why, line)
    })
  }
})

describe('e2e: address-book probing without authentication', function () {
  this.timeout(60000)
  // No periodic lint scan here: only the probes may talk to Redis.
  const rx = useReceiver({ listen: [`[${V6MX}]:25`], ini: '[main]\nundecided=defer\nlint_interval=0' })
  let redis: RedisServer
  before(async () => {
    ;({ redis } = rx)
    await redis.cli('SADD', 'mx6:book:alice@rcpt.test', 'friend@fail.test')
  })

  async function commands(): Promise<number> {
    return Number(/^total_commands_processed:(\d+)/m.exec(await redis.cli('INFO', 'stats'))?.[1])
  }

  it('the same reply and the same number of Redis commands whether or not the entry exists', async () => {
    const probe = async (rcpt: string) => {
      const before = await commands()
      const r = await send('2001:db8:7::200', 'friend@fail.test', plain('friend@fail.test'), rcpt)
      // Let the counter flush (once a second) and the INFO call itself settle.
      await new Promise((res) => setTimeout(res, 1200))
      return { reply: r.rcpt[0].lines.join('\n'), used: (await commands()) - before }
    }
    await probe('warmup@rcpt.test')
    const listed = await probe('alice@rcpt.test')
    const unlisted = await probe('nobody@rcpt.test')
    assert.equal(listed.reply, unlisted.reply)
    assert.match(listed.reply, /^451 4\.7\.26 /)
    assert.equal(listed.used, unlisted.used)
  })
})
