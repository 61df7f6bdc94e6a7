// A real Postfix sender with two MX hosts: the IPv6 MX is Haraka with mx6-receive,
// the IPv4 MX is the same Haraka on its IPv4 address. Unknown mail must reach the
// IPv4 MX within the same delivery attempt; allow-listed mail stays on IPv6.
import assert from 'node:assert/strict'
import type { HarakaServer } from '../support/haraka'
import { PostfixSender, SENDER } from '../support/postfix'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'


describe('e2e: Postfix falls back from our IPv6 MX to the IPv4 MX', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`, `${V4MX}:25`] })
  let redis: RedisServer
  let haraka: HarakaServer
  let postfix: PostfixSender

  before(async () => {
    ;({ redis, haraka } = rx)
    postfix = await PostfixSender.start()
  })
  after(async () => postfix?.stop())

  it('delivers an unknown message via the IPv4 MX in the same attempt, after the 451 over IPv6', async () => {
    const before = haraka.captured().length
    const mid = await postfix.send({ from: 'someone@sender.other.test', to: 'user@rcpt.test', subject: 'unknown sender' })
    const d = await postfix.waitFor(mid)
    assert.equal(d.status, 'sent', d.lines.join('\n'))
    assert.equal(d.relay, `v4mx.rcpt.test[${V4MX}]:25`)
    assert.ok(d.lines.some((l) => l.includes(`host v6mx.rcpt.test[${V6MX}] said: 451 4.7.26 `)), d.lines.join('\n'))
    // One queue id, no "deferred" status in between: the same delivery attempt.
    assert.ok(!d.lines.some((l) => /status=deferred/.test(l)), d.lines.join('\n'))
    const got = (await haraka.waitForCaptured(before + 1)).slice(before)
    assert.equal(got.length, 1, 'delivered once')
    assert.equal(got[0].meta.remote_ip, SENDER.v4)
    assert.ok(got[0].raw.includes(`Message-ID: ${mid}`))
    // The IPv6 attempt was really made and decided by mx6-receive, after DATA.
    assert.match(haraka.log(), /connect ip=2001:db8:9::2 /)
    assert.match(haraka.log(), /\[mx6-receive\] data_post verdict=defer rule=none/)
  })

  it('delivers an allow-listed sender over IPv6', async () => {
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:9::/64', 'sender network')
    const before = haraka.captured().length
    const mid = await postfix.send({ from: 'someone@sender.other.test', to: 'user@rcpt.test', subject: 'allow-listed' })
    const d = await postfix.waitFor(mid)
    assert.equal(d.status, 'sent', d.lines.join('\n'))
    assert.equal(d.relay, `v6mx.rcpt.test[${V6MX}]:25`)
    const got = (await haraka.waitForCaptured(before + 1)).slice(before)
    assert.equal(got.length, 1)
    assert.equal(got[0].meta.remote_ip, SENDER.v6)
    assert.equal((got[0].meta.results?.['mx6-receive'] as Record<string, unknown>).rule, 'ip:allow')
    await redis.cli('HDEL', 'mx6:ip:allow', '2001:db8:9::/64')
  })

  it('delivers SPF-authenticated mail of a whitelisted domain over IPv6', async () => {
    await redis.cli('HSET', 'mx6:domain:allow', 'other.test', 'partner')
    const mid = await postfix.send({ from: 'friend@other.test', to: 'user@rcpt.test', subject: 'whitelisted domain', headers: { From: 'friend@other.test' } })
    const d = await postfix.waitFor(mid)
    assert.equal(d.status, 'sent', d.lines.join('\n'))
    assert.equal(d.relay, `v6mx.rcpt.test[${V6MX}]:25`)
    assert.equal((haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>).rule, 'domain:allow')
  })
})
