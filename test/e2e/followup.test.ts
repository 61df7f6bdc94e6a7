// Operational evidence end to end: a real Postfix comes back over IPv4 after our
// IPv6 deferral (returned, with its delay); a single swaks attempt never does.
import assert from 'node:assert/strict'
import { main } from '../../scripts/mx6ctl'
import { PostfixSender, SENDER } from '../support/postfix'
import { poll, sleep } from '../support/proc'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import { smtpSession, swaks } from '../support/smtp'

async function ctl(...argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = []
  const code = await main(argv, { out: (t) => void out.push(t), err: (t) => void out.push(t) })
  return { code, out: out.join('\n') }
}

describe('e2e: follow-up of deferred IPv6 mail (mx6ctl followup)', function () {
  this.timeout(90000)
  const rx = useReceiver({
    listen: [`[${V6MX}]:25`, `${V4MX}:25`],
    plugins: ['spf', 'dkim', 'mx6-receive', 'rcpt_to.in_host_list', 'mx6-learn', 'queue-capture'],
    config: () => ({ 'mx6-learn.ini': `[redis]\nport=${rx.redis.port}\n` }),
  })
  let postfix: PostfixSender
  const saved = process.env.MX6_REDIS_URL
  before(async () => {
    process.env.MX6_REDIS_URL = rx.redis.url
    postfix = await PostfixSender.start()
  })
  after(async () => {
    await postfix?.stop()
    if (saved === undefined) delete process.env.MX6_REDIS_URL
    else process.env.MX6_REDIS_URL = saved
  })

  it('Postfix: deferred over IPv6, back over IPv4 in the same attempt; followup shows it with its delay', async () => {
    const mid = await postfix.send({ from: 'someone@sender.other.test', to: 'user@rcpt.test', subject: 'follow me' })
    const d = await postfix.waitFor(mid)
    assert.equal(d.status, 'sent', d.lines.join('\n'))
    assert.equal(d.relay, `v4mx.rcpt.test[${V4MX}]:25`)
    await poll(() => (/follow-up: deferred over IPv6 \d+ s ago, came back over IPv4 from 203\.0\.113\.2 \(matched by Message-ID\)/.test(rx.haraka.log()) ? true : undefined), 5000, 'follow-up match')
    const r = await ctl('followup', '--json')
    assert.equal(r.code, 0, r.out)
    const rep = JSON.parse(r.out)
    assert.equal(rep.deferred, 1)
    assert.equal(rep.returned, 1)
    assert.ok(rep.delay.max >= 0 && rep.delay.max < 30, JSON.stringify(rep.delay))
    assert.ok(rep.bytesBeforeDataDeferral > 0)
    assert.deepEqual(rep.byHost.map((h: { sender: string; returned: number }) => [h.sender, h.returned]), [[SENDER.v6.replace(/::2$/, '::/64'), 1]])
  })

  it('a sender that never retries shows up in --suggest once the window has passed, the returning one does not', async () => {
    const r = await swaks(['--server', V6MX, '--local-interface', '2001:db8:7::70', '--ehlo', 'x.neutral.test', '--from', 'once@neutral.test', '--to', 'bob@rcpt.test'])
    assert.equal(r.code, 26)
    assert.equal((await ctl('followup', '--suggest', '--window', '1h')).out, 'no sender whose deferred mail never came back over IPv4 within the window')
    await sleep(1500)
    const s = await ctl('followup', '--suggest', '--window', '1s')
    assert.equal(s.code, 0)
    assert.match(s.out, /^mx6ctl green ip add 2001:db8:7::\/64 "never retried over IPv4 \(1 deferred, domain neutral\.test\)"$/m)
    assert.doesNotMatch(s.out, /2001:db8:9::/)
    const text = await ctl('followup')
    assert.match(text.out, /2 deferred over IPv6, 1 came back over IPv4 \(50\.0 %\)/)
  })

  it('IPv4 mail without a fingerprint is accepted as usual and changes nothing', async () => {
    const r = await smtpSession({ host: V4MX, port: 25, localAddress: '192.0.2.70', ehlo: 'x.test', mailFrom: 'new@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: v4\r\nMessage-ID: <fresh@neutral.test>\r\n\r\nhi\r\n' })
    assert.equal(r.dataEnd?.code, 250)
    await sleep(300)
    const rep = JSON.parse((await ctl('followup', '--json')).out)
    assert.deepEqual([rep.deferred, rep.returned], [2, 1])
  })
})
