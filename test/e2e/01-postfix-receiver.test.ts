// Smoke test of PostfixReceiver (test/support/postfix-receiver.ts): a real Postfix as the
// receiving MTA in the test namespace, answering IPv6 clients 550 5.5.7 after DATA (MX6
// fallback) and storing what IPv4 clients send; plus the pfmx6.test DNS records, and a
// PostfixSender running next to it.
import assert from 'node:assert/strict'
import dns from 'node:dns'
import fs from 'node:fs'
import { requireTestbed } from '../support/net'
import { PostfixSender, SENDER } from '../support/postfix'
import { alive } from '../support/postfix-instance'
import { MX6_FOOTER, MX6_REPLY, PostfixReceiver, RECEIVER_HOSTNAME } from '../support/postfix-receiver'
import { poll, run } from '../support/proc'
import { SessionResult, smtpSession } from '../support/smtp'

const V6 = '2001:db8:25::7'
const V4 = '198.51.100.27'
const CLIENT6 = '2001:db8:7::77'
const CLIENT4 = '192.0.2.77'
const DOMAIN = 'pfmx6.test'

const message = (subject: string, extra = ''): string =>
  `${extra}From: a@allowed.test\nTo: user@${DOMAIN}\nSubject: ${subject}\n\n.leading dot\nbody of ${subject}\n`

/** Local addresses of the TCP listeners of one process. */
async function listeners(pid: number): Promise<string[]> {
  const out = (await run('ss', ['-Hltnp'])).stdout
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`)).map((l) => l.trim().split(/\s+/)[3]).sort()
}

/** Waits until `pid` has exited (or is a zombie). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50))
  return !alive(pid)
}

describe('PostfixReceiver', () => {
  before(() => {
    requireTestbed()
  })

  it('DNS answers the MX, SRV and addresses of pfmx6.test', async () => {
    const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 })
    assert.deepEqual(await resolver.resolveMx(DOMAIN), [{ exchange: RECEIVER_HOSTNAME, priority: 10 }])
    assert.deepEqual(await resolver.resolveSrv(`_mx6._tcp.${DOMAIN}`), [{ name: RECEIVER_HOSTNAME, port: 25, priority: 0, weight: 0 }])
    assert.deepEqual(await resolver.resolve6(RECEIVER_HOSTNAME), [V6])
    assert.deepEqual(await resolver.resolve4(RECEIVER_HOSTNAME), [V4])
    assert.deepEqual(await resolver.reverse(V6), [RECEIVER_HOSTNAME])
  })

  describe('with the MX6 fallback', () => {
    let rcpt: PostfixReceiver | undefined
    before(async () => {
      rcpt = await PostfixReceiver.start({ listen: [`[${V6}]:25`, `${V4}:25`], domains: [DOMAIN] })
    })
    after(async () => rcpt?.stop())

    it('listens on exactly the listen addresses', async () => {
      assert.ok(rcpt!.masterPid > 0)
      assert.deepEqual(await listeners(rcpt!.masterPid), [`${V4}:25`, `[${V6}]:25`])
      // Postfix would share the port (SO_REUSEPORT) instead of failing: refused up front.
      await assert.rejects(PostfixReceiver.start({ listen: [`${V4}:25`], domains: [DOMAIN] }), /already listening on 198\.51\.100\.27:25/)
      // postlogd writes asynchronously: the line may come a moment after start() returned.
      await poll(() => (/postfix-rcpt\/master\[\d+\]: daemon started/.test(rcpt!.log()) ? true : undefined), 5000, 'daemon started')
    })

    it('answers an IPv6 client 550 5.5.7 after DATA (two lines) and stores nothing', async () => {
      const r = await smtpSession({
        host: V6, port: 25, localAddress: CLIENT6, ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: [`user@${DOMAIN}`], data: message('over v6'),
      })
      assert.equal(r.banner.code, 220, r.transcript)
      assert.match(r.banner.text, new RegExp(`^${RECEIVER_HOSTNAME} ESMTP`))
      assert.equal(r.mail.code, 250, r.transcript)
      assert.equal(r.rcpt[0].code, 250, r.transcript)
      assert.equal(r.data?.code, 354, r.transcript)
      assert.equal(r.dataEnd?.code, 550, r.transcript)
      const lines = r.dataEnd!.lines
      assert.equal(lines.length, 2, r.transcript)
      assert.equal(lines[0], `550-5.5.7 <unknown[${CLIENT6}]>: Client host rejected: ${MX6_REPLY.text}`)
      assert.equal(lines[1], `550 5.5.7 ${MX6_FOOTER}`)
      // Postfix writes its log line after the reply, sometimes after the client has read it: wait for it.
      const reject = new RegExp(`: reject: END-OF-MESSAGE from unknown\\[${CLIENT6}\\]: 550 5\\.5\\.7 .*: ${MX6_REPLY.text};`)
      assert.match(await poll(() => (reject.test(rcpt!.log()) ? rcpt!.log() : undefined), 5000, 'the reject line in the maillog'), reject)
      assert.deepEqual(rcpt!.received(), [])
    })

    it('accepts an IPv4 client and stores the message with its client address', async () => {
      // A forged Received: from the client must not be taken for Postfix's own.
      const forged = `Received: from forged.test (forged.test [IPv6:2001:db8:7::66])\n\tby elsewhere.test (Postfix) with ESMTP id FORGED1\n`
      const r = await smtpSession({
        host: V4, port: 25, localAddress: CLIENT4, ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: [`user@${DOMAIN}`], data: message('over v4', forged),
      })
      assert.equal(r.rcpt[0].code, 250, r.transcript)
      assert.equal(r.dataEnd?.code, 250, r.transcript)
      const queued = /queued as (\w+)/.exec(r.dataEnd!.text)
      assert.ok(queued, r.transcript)
      // Only this one: the IPv6 message of the previous test was not stored late either.
      const [m] = await rcpt!.waitForReceived(1)
      assert.equal(rcpt!.received().length, 1)
      assert.equal(m.clientAddress, CLIENT4)
      assert.equal(m.queueId, queued[1])
      assert.equal(rcpt!.clientFromLog(m.queueId!), CLIENT4, 'the maillog agrees')
      assert.equal(m.mailFrom, 'a@allowed.test')
      assert.equal(m.rcptTo, `user@${DOMAIN}`)
      assert.match(m.raw, /^Subject: over v4$/m)
      assert.match(m.raw, /^\.leading dot$/m)
      assert.match(m.raw, /^Received: from forged\.test/m, 'the forged header is kept, below Postfix\'s own')
    })

    it('accepts any local part of its domains, refuses other domains (no relay)', async () => {
      const r = await smtpSession({
        host: V4, port: 25, localAddress: CLIENT4, ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: [`someone.else+tag@${DOMAIN}`, 'user@elsewhere.test'], data: message('two rcpts'),
      })
      assert.equal(r.rcpt[0].code, 250, r.transcript)
      assert.equal(r.rcpt[1].code, 554, r.transcript)
      assert.match(r.rcpt[1].text, /Relay access denied/)
      assert.equal(r.dataEnd?.code, 250, r.transcript)
      const all = await rcpt!.waitForReceived(2)
      assert.equal(all[1].rcptTo, `someone.else+tag@${DOMAIN}`)
      assert.equal(all[1].clientAddress, CLIENT4)
    })

    it('its CIDR table matches IPv6 clients only, never IPv4 (plain or IPv4-mapped)', async () => {
      const q = (addr: string): Promise<string> =>
        run('postmap', ['-c', rcpt!.configDir, '-q', addr, `cidr:${rcpt!.configDir}/mx6.cidr`]).then((r) => r.stdout.trim())
      assert.equal(await q(CLIENT6), `550 5.5.7 ${MX6_REPLY.text}`)
      assert.equal(await q('::1'), `550 5.5.7 ${MX6_REPLY.text}`)
      assert.equal(await q(CLIENT4), '')
      assert.equal(await q('127.0.0.1'), '')
      assert.equal(await q(`::ffff:${CLIENT4}`), 'DUNNO')
    })

    it('on wildcard listeners ([::] and 0.0.0.0): IPv4 clients accepted, also via ::ffff: addresses', async () => {
      const ds = await PostfixReceiver.start({ listen: ['[::]:2526', '0.0.0.0:2526'], domains: [DOMAIN] })
      try {
        assert.deepEqual(await listeners(ds.masterPid), ['0.0.0.0:2526', '[::]:2526'])
        const send = (host: string, localAddress: string): Promise<SessionResult> => smtpSession({
          host, port: 2526, localAddress, ehlo: 'client.other.test',
          mailFrom: 'a@allowed.test', rcptTo: [`user@${DOMAIN}`], data: message(`to ${host} from ${localAddress}`),
        })
        const v6 = await send(V6, CLIENT6)
        assert.equal(v6.dataEnd?.code, 550, v6.transcript)
        const v4 = await send(V4, CLIENT4)
        assert.equal(v4.dataEnd?.code, 250, v4.transcript)
        // An IPv4 connection made through an AF_INET6 socket: Postfix still sees 192.0.2.77.
        const mapped = await send(`::ffff:${V4}`, `::ffff:${CLIENT4}`)
        assert.equal(mapped.dataEnd?.code, 250, mapped.transcript)
        const got = await ds.waitForReceived(2)
        assert.deepEqual(got.map((m) => m.clientAddress), [CLIENT4, CLIENT4])
      } finally {
        await ds.stop()
      }
    })

    it('stops without leaving processes or files, and stop() can be repeated', async () => {
      const r = rcpt!
      const pid = r.masterPid
      await r.stop()
      await r.stop()
      assert.ok(await gone(pid), 'master gone')
      assert.ok(!fs.existsSync(r.base), 'base dir removed')
      assert.deepEqual(await listeners(pid), [])
      rcpt = undefined
    })
  })

  describe('without the MX6 fallback, next to a PostfixSender', () => {
    let plain: PostfixReceiver | undefined
    let mx6: PostfixReceiver | undefined
    let sender: PostfixSender | undefined
    after(async () => {
      await sender?.stop()
      await plain?.stop()
      await mx6?.stop()
    })

    it('starts two receivers and a sender at the same time', async () => {
      const t0 = Date.now()
      ;[plain, mx6, sender] = await Promise.all([
        PostfixReceiver.start({ listen: [`[${V6}]:2525`], domains: [DOMAIN, 'other.pfmx6.test'], mx6Fallback: false }),
        PostfixReceiver.start({ listen: [`[${V6}]:25`, `${V4}:25`], domains: [DOMAIN] }),
        PostfixSender.start(),
      ])
      const ms = Date.now() - t0
      assert.ok(ms < 10000, `started in ${ms} ms`)
      assert.notEqual(plain.masterPid, mx6.masterPid)
      assert.notEqual(plain.base, mx6.base)
      assert.deepEqual(await listeners(plain.masterPid), [`[${V6}]:2525`])
    })

    it('accepts IPv6 clients without the fallback, reading the IPv6 client address', async () => {
      const r = await smtpSession({
        host: V6, port: 2525, localAddress: CLIENT6, ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: ['x@other.pfmx6.test'], data: message('plain v6'),
      })
      assert.equal(r.dataEnd?.code, 250, r.transcript)
      const [m] = await plain!.waitForReceived(1)
      assert.equal(m.clientAddress, CLIENT6)
      assert.equal(plain!.clientFromLog(m.queueId!), CLIENT6)
      assert.equal(mx6!.received().length, 0)
    })

    it('the sender gets the 550 5.5.7 from the IPv6 address of pfmx6.rcpt.test (hard bounce)', async () => {
      const mid = await sender!.send({ from: 'someone@other.test', to: `user@${DOMAIN}` })
      const d = await sender!.waitFor(mid)
      assert.equal(d.status, 'bounced', d.lines.join('\n'))
      assert.equal(d.dsn, '5.5.7')
      assert.equal(d.relay, `${RECEIVER_HOSTNAME}[${V6}]:25`)
      const reject = new RegExp(`reject: END-OF-MESSAGE from \\S+\\[${SENDER.v6}\\]: 550 5\\.5\\.7`)
      assert.match(await poll(() => (reject.test(mx6!.log()) ? mx6!.log() : undefined), 5000, 'the reject line in the maillog'), reject)
      assert.equal(mx6!.received().length, 0)
    })

    it('stops all three', async () => {
      const pids = [plain!.masterPid, mx6!.masterPid]
      const dirs = [plain!.base, mx6!.base, sender!.base]
      await Promise.all([plain!.stop(), mx6!.stop(), sender!.stop()])
      for (const pid of pids) assert.ok(await gone(pid), `master ${pid} gone`)
      for (const dir of dirs) assert.ok(!fs.existsSync(dir), `${dir} removed`)
      assert.ok(!(await run('ip', ['netns', 'list'])).stdout.includes(sender!.ns), 'sender namespace removed')
      plain = mx6 = sender = undefined
    })
  })
})
