// Smoke test of the e2e harness itself (no haraka-mx6 plugin involved): hermetic DNS, private
// Redis, a real Haraka with the capture queue, raw SMTP / swaks clients bound to public-looking
// peers, and a real Postfix delivering from its own namespace.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import dns from 'node:dns'
import fs from 'node:fs'
import path from 'node:path'
import { HarakaServer } from '../support/haraka'
import { requireTestbed } from '../support/net'
import { PostfixSender, SENDER } from '../support/postfix'
import { run } from '../support/proc'
import { RedisServer } from '../support/redis'
import { dkimSign, smtpSession, swaks } from '../support/smtp'

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures')
const V6MX = '2001:db8:25::25'
const V4MX = '198.51.100.25'

describe('test bed', () => {
  // Scoped to this file: outside the test bed, unit tests in the same mocha run still run.
  before(() => {
    requireTestbed()
  })

  describe('hermetic DNS', () => {
    const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 })

    it('uses only the namespace resolver and has no route out', async () => {
      assert.deepEqual(dns.getServers(), ['127.0.0.53'])
      for (const family of ['-4', '-6']) {
        assert.equal((await run('ip', [family, 'route', 'show', 'default'])).stdout.trim(), '', `default route (${family})`)
      }
    })

    it('answers the MX, A/AAAA and SRV records', async () => {
      const mx = (await resolver.resolveMx('rcpt.test')).sort((a, b) => a.priority - b.priority)
      assert.deepEqual(mx, [
        { exchange: 'v6mx.rcpt.test', priority: 10 },
        { exchange: 'v4mx.rcpt.test', priority: 20 },
      ])
      assert.deepEqual(await resolver.resolve6('v6mx.rcpt.test'), [V6MX])
      assert.deepEqual(await resolver.resolve4('v4mx.rcpt.test'), [V4MX])
      assert.deepEqual(await resolver.resolve6('mx6.rcpt.test'), ['2001:db8:25::6'])
      assert.deepEqual(await resolver.resolveSrv('_mx6._tcp.mx6rcpt.test'), [{ name: 'mx6.rcpt.test', port: 25, priority: 0, weight: 0 }])
      assert.deepEqual(await resolver.resolveMx('mx6rcpt.test'), [{ exchange: 'v4mx.rcpt.test', priority: 10 }])
      // getaddrinfo (dns.lookup) goes through the namespace's resolv.conf too.
      assert.equal((await dns.promises.lookup('v4mx.rcpt.test')).address, V4MX)
    })

    it('answers the SPF TXT records', async () => {
      assert.deepEqual(await resolver.resolveTxt('allowed.test'), [
        ['v=spf1 ip6:2001:db8:7::/64 ip6:2001:db8:9::/64 ip4:192.0.2.0/24 ip4:203.0.113.0/24 -all'],
      ])
      assert.deepEqual(await resolver.resolveTxt('mail.allowed.test'), [['v=spf1 ip6:2001:db8:7::/64 -all']])
      assert.deepEqual(await resolver.resolveTxt('fail.test'), [['v=spf1 -all']])
      assert.deepEqual(await resolver.resolveTxt('softfail.test'), [['v=spf1 ~all']])
      assert.deepEqual(await resolver.resolveTxt('neutral.test'), [['v=spf1 ?all']])
    })

    it('publishes the DKIM keys of the fixtures (split into several strings)', async () => {
      for (const domain of ['allowed.test', 'other.test']) {
        const [strings] = await resolver.resolveTxt(`s1._domainkey.${domain}`)
        assert.ok(strings.length > 1, 'p= is split into <= 255 byte strings')
        const key = crypto.createPublicKey(fs.readFileSync(path.join(FIXTURES, 'dkim', `${domain}.s1.key`)))
        const p = key.export({ type: 'spki', format: 'der' }).toString('base64')
        assert.equal(strings.join(''), `v=DKIM1; k=rsa; p=${p}`)
      }
    })

    it('answers PTR for client.other.test (FCrDNS)', async () => {
      assert.deepEqual(await resolver.reverse('2001:db8:7::10'), ['client.other.test'])
      assert.deepEqual(await resolver.resolve6('client.other.test'), ['2001:db8:7::10'])
    })

    it('NXDOMAINs unknown test names and reverse lookups, REFUSES the outside world, fast', async () => {
      const t0 = Date.now()
      await assert.rejects(resolver.resolve4('nope.rcpt.test'), { code: 'ENOTFOUND' })
      await assert.rejects(resolver.reverse('2001:db8:7::99'), { code: 'ENOTFOUND' })
      await assert.rejects(resolver.reverse('192.0.2.99'), { code: 'ENOTFOUND' })
      await assert.rejects(resolver.resolve4('example.com'), { code: 'EREFUSED' })
      assert.ok(Date.now() - t0 < 1000, 'answered locally, no timeouts')
    })
  })

  describe('RedisServer', () => {
    let redis: RedisServer | undefined
    after(async () => redis?.stop())

    it('starts, answers redis-cli, restarts empty on the same port and stops', async () => {
      redis = await RedisServer.start()
      assert.ok(redis.pid > 0 && redis.port > 0)
      assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`)
      assert.equal(await redis.cli('SET', 'k', 'v'), 'OK')
      assert.equal(await redis.cli('GET', 'k'), 'v')
      const oldPid = redis.pid
      await redis.restart()
      assert.notEqual(redis.pid, oldPid)
      assert.equal(await redis.cli('PING'), 'PONG')
      assert.equal(await redis.cli('GET', 'k'), '', 'no persistence')
      await redis.stop()
      await assert.rejects(redis.cli('PING'))
    })
  })

  describe('Haraka, SMTP clients and Postfix', () => {
    let haraka: HarakaServer
    before(async () => {
      haraka = await HarakaServer.start({
        listen: [`[${V6MX}]:25`, `${V4MX}:25`],
        plugins: ['rcpt_to.in_host_list', 'queue-capture'],
      })
    })
    after(async () => haraka?.stop())

    const message = (subject: string): string => `From: a@allowed.test\nTo: user@rcpt.test\nSubject: ${subject}\n\n.leading dot\nbody\n`

    it('accepts over IPv6 from a bound public-looking peer and captures it', async () => {
      const r = await smtpSession({
        host: V6MX, port: 25, localAddress: '2001:db8:7::10', ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: ['user@rcpt.test'], data: message('v6'),
      })
      assert.equal(r.banner.code, 220)
      assert.equal(r.ehlo.code, 250)
      assert.ok(r.ehlo.lines.length > 1 && r.ehlo.lines[0].startsWith('250-'), 'multi-line EHLO reply')
      assert.equal(r.rcpt[0].code, 250)
      assert.equal(r.data?.code, 354)
      assert.equal(r.dataEnd?.code, 250, r.transcript)
      const [c] = (await haraka.waitForCaptured(1)).slice(-1)
      assert.equal(c.meta.remote_ip, '2001:db8:7::10')
      assert.equal(c.meta.local_ip, V6MX)
      assert.equal(c.meta.mail_from, 'a@allowed.test')
      assert.deepEqual(c.meta.rcpt_to, ['user@rcpt.test'])
      assert.match(c.raw, /^Subject: v6\r?$/m)
      assert.match(c.raw, /^\.leading dot\r?$/m, 'dot-stuffing undone by the server')
    })

    it('accepts over IPv4 from 192.0.2.10', async () => {
      const before = haraka.captured().length
      const r = await smtpSession({
        host: V4MX, port: 25, localAddress: '192.0.2.10', ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: ['user@rcpt.test'], data: message('v4'),
      })
      assert.equal(r.dataEnd?.code, 250, r.transcript)
      const c = (await haraka.waitForCaptured(before + 1))[before]
      assert.equal(c.meta.remote_ip, '192.0.2.10')
      assert.equal(c.meta.local_ip, V4MX)
    })

    it('sends no DATA when every RCPT is refused', async () => {
      const r = await smtpSession({
        host: V6MX, port: 25, localAddress: '2001:db8:7::10', ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: ['user@elsewhere.test'], data: message('refused'),
      })
      assert.equal(r.rcpt[0].code, 550)
      assert.equal(r.data, undefined)
      assert.match(r.transcript, /^C: QUIT$/m)
    })

    it('builds DKIM-signed messages with the fixture keys', async () => {
      const raw = await dkimSign({
        domain: 'allowed.test', selector: 's1', keyFile: path.join(FIXTURES, 'dkim', 'allowed.test.s1.key'),
        from: 'a@allowed.test', to: 'user@rcpt.test', subject: 'signed', body: 'signed body',
      })
      assert.match(raw.toString(), /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=allowed\.test;/m)
    })

    it('runs swaks bound with --local-interface', async () => {
      const before = haraka.captured().length
      const ok = await swaks(['--server', V6MX, '--port', '25', '--local-interface', '2001:db8:7::11', '--ehlo', 'client.other.test',
        '--from', 'a@allowed.test', '--to', 'user@rcpt.test', '--header', 'Subject: swaks'])
      assert.equal(ok.code, 0, ok.stdout + ok.stderr)
      const c = (await haraka.waitForCaptured(before + 1))[before]
      assert.equal(c.meta.remote_ip, '2001:db8:7::11')
      const refused = await swaks(['--server', V4MX, '--local-interface', '192.0.2.11', '--ehlo', 'client.other.test',
        '--from', 'a@allowed.test', '--to', 'user@elsewhere.test'])
      assert.equal(refused.code, 24, 'swaks exit 24: RCPT refused')
    })

    describe('PostfixSender', () => {
      let postfix: PostfixSender | undefined
      after(async () => postfix?.stop())

      it('delivers to user@rcpt.test through the IPv6 MX from its own namespace', async () => {
        postfix = await PostfixSender.start()
        const before = haraka.captured().length
        const mid = await postfix.send({ from: 'someone@other.test', to: 'user@rcpt.test', subject: 'via postfix' })
        const d = await postfix.waitFor(mid)
        assert.equal(d.status, 'sent', d.lines.join('\n'))
        assert.equal(d.relay, `v6mx.rcpt.test[${V6MX}]:25`)
        const c = (await haraka.waitForCaptured(before + 1))[before]
        assert.equal(c.meta.remote_ip, SENDER.v6)
        assert.equal(c.meta.helo, SENDER.hostname)
        assert.ok(c.raw.includes(`Message-ID: ${mid}`))
        await postfix.stop()
        const ns = (await run('ip', ['netns', 'list'])).stdout
        assert.ok(!ns.includes(postfix.ns), `namespace ${postfix.ns} removed`)
        postfix = undefined
      })
    })
  })

  describe('PostfixSender MX fallback', () => {
    // The IPv6 MX defers every RCPT with a two-line 451, the IPv4 MX accepts.
    const defer = "exports.hook_rcpt = (next) => next(DENYSOFT, require('haraka-dsn').create(451, ['first', 'second'], 7, 26))"
    let v6: HarakaServer | undefined
    let v4: HarakaServer | undefined
    let postfix: PostfixSender | undefined
    after(async () => {
      await postfix?.stop()
      await v6?.stop()
      await v4?.stop()
    })

    it('logs the 451 from the IPv6 MX and the delivery via the IPv4 MX in one attempt', async () => {
      v6 = await HarakaServer.start({ listen: [`[${V6MX}]:25`], plugins: ['defer-all', 'queue-capture'], pluginFiles: { 'defer-all': defer } })
      v4 = await HarakaServer.start({ listen: [`${V4MX}:25`], plugins: ['rcpt_to.in_host_list', 'queue-capture'] })
      postfix = await PostfixSender.start()
      const mid = await postfix.send({ from: 'someone@other.test', to: 'user@rcpt.test' })
      const d = await postfix.waitFor(mid)
      assert.equal(d.status, 'sent', d.lines.join('\n'))
      assert.equal(d.relay, `v4mx.rcpt.test[${V4MX}]:25`)
      assert.ok(d.lines.some((l) => l.includes(`host v6mx.rcpt.test[${V6MX}] said: 451-4.7.26 first 451 4.7.26 second`)), d.lines.join('\n'))
      assert.equal(v6.captured().length, 0)
      assert.equal((await v4.waitForCaptured(1))[0].meta.remote_ip, SENDER.v4)
    })
  })
})
