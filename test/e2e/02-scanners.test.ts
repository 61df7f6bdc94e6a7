// Smoke test of the content-scanner helpers (no haraka-mx6 plugin involved): a private clamd with
// only the test signatures, a private spamd (local tests only), and a real Haraka running the
// shipped haraka-plugin-clamd and haraka-plugin-spamassassin against them.
import assert from 'node:assert/strict'
import { CaptureMeta, HarakaServer } from '../support/haraka'
import { CLAMD_TEST_SIGNATURE, CLAMD_TEST_VIRUS, ClamdServer, EICAR_VIRUS, clamdIni, eicar } from '../support/clamd'
import { requireTestbed } from '../support/net'
import { poll } from '../support/proc'
import { smtpSession } from '../support/smtp'
import { GTUBE, SpamdServer, spamassassinIni } from '../support/spamd'

const V6MX = '2001:db8:25::25'
const V4MX = '198.51.100.25'

let seq = 0
function message(subject: string, body: string): string {
  seq++
  return [
    'From: a@allowed.test',
    'To: user@rcpt.test',
    `Subject: ${subject}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <scan-${process.pid}-${seq}@allowed.test>`,
    '',
    body,
    '',
  ].join('\n')
}

/** Haraka's txn.results for one plugin, from the queue-capture sidecar. */
function pluginResults(meta: CaptureMeta, plugin: string): Record<string, unknown> {
  const r = (meta.results ?? {})[plugin]
  assert.ok(r && typeof r === 'object', `results for ${plugin}: ${JSON.stringify(meta.results)}`)
  return r as Record<string, unknown>
}

describe('content scanners', () => {
  // One clamd and one spamd for the whole file: spamd compiles its rules for ~2 s at start.
  let clamd: ClamdServer | undefined
  let spamd: SpamdServer | undefined
  before(async function () {
    requireTestbed()
    this.timeout(60000)
    // Assigned as each comes up, so after() stops one even when the other failed to start.
    await Promise.all([ClamdServer.start().then((c) => (clamd = c)), SpamdServer.start().then((s) => (spamd = s))])
  })
  after(async () => {
    await Promise.all([clamd?.stop(), spamd?.stop()])
  })
  const cl = (): ClamdServer => clamd as ClamdServer
  const sa = (): SpamdServer => spamd as SpamdServer

  describe('ClamdServer', () => {
    it('runs on its own loopback port with only the test signatures', () => {
      assert.ok(cl().pid > 0 && cl().port > 0)
      assert.equal(cl().socket, `127.0.0.1:${cl().port}`)
      assert.match(cl().log(), /Loaded 2 signatures\./)
      assert.match(cl().log(), new RegExp(`TCP: Bound to \\[127\\.0\\.0\\.1\\]:${cl().port}`))
    })

    it('detects the test signature and EICAR over INSTREAM, finds clean data clean', async () => {
      const before = cl().scanCount()
      const marked = await cl().scan(`Hello,\nthis text carries ${CLAMD_TEST_SIGNATURE} in the middle.\n`)
      assert.deepEqual(marked, { clean: false, virus: CLAMD_TEST_VIRUS, reply: `stream: ${CLAMD_TEST_VIRUS} FOUND` })
      assert.equal((await cl().scan(eicar())).virus, EICAR_VIRUS)
      const clean = await cl().scan('Hello,\nnothing to see here.\n')
      assert.deepEqual(clean, { clean: true, reply: 'stream: OK' })
      // Several INSTREAM chunks, the marker in the last one.
      const big = Buffer.concat([Buffer.alloc(300 * 1024, 'a'), Buffer.from(CLAMD_TEST_SIGNATURE)])
      assert.equal((await cl().scan(big)).virus, CLAMD_TEST_VIRUS)
      await poll(() => (cl().scanCount() === before + 4 ? true : undefined), 5000, 'four scans in the clamd log')
    })
  })

  describe('SpamdServer', () => {
    it('answers CHECK with a score and counts the request', async () => {
      assert.ok(sa().pid > 0 && sa().port > 0)
      const before = sa().requestCount()
      const r = await sa().check(message('check', 'An ordinary message.'))
      assert.match(r.status, /^SPAMD\/1\.\d 0 EX_OK$/)
      assert.equal(r.isSpam, false)
      assert.ok(Number.isFinite(r.score) && r.score < 5, `score ${r.score}`)
      assert.equal(r.threshold, 5)
      assert.equal(await sa().waitForRequests(before + 1), before + 1)
      assert.match(sa().log(), /spamd: result: \. +-?\d+ - /)
    })

    it('scores GTUBE as spam and PROCESS returns the message with X-Spam-* headers', async () => {
      const before = sa().requestCount()
      const r = await sa().process(message('gtube', GTUBE))
      assert.equal(r.isSpam, true)
      assert.ok(r.score >= 1000, `score ${r.score}`)
      assert.match(r.body, /^X-Spam-Flag: YES\r?$/m)
      assert.match(r.body, /^X-Spam-Status: Yes, score=\d+\.\d required=5\.0 tests=.*GTUBE/m)
      assert.equal(await sa().waitForRequests(before + 1), before + 1)
    })
  })

  describe('Haraka with haraka-plugin-clamd and haraka-plugin-spamassassin', () => {
    let haraka: HarakaServer | undefined
    before(async () => {
      haraka = await HarakaServer.start({
        listen: [`[${V6MX}]:25`, `${V4MX}:25`],
        plugins: ['clamd', 'spamassassin', 'rcpt_to.in_host_list', 'queue-capture'],
        config: { 'clamd.ini': clamdIni(cl()), 'spamassassin.ini': spamassassinIni(sa()) },
      })
    })
    after(async () => haraka?.stop())
    const hk = (): HarakaServer => haraka as HarakaServer

    const send = (localAddress: string, host: string, data: string) =>
      smtpSession({
        host, port: 25, localAddress, ehlo: 'client.other.test',
        mailFrom: 'a@allowed.test', rcptTo: ['user@rcpt.test'], data,
      })

    it('rejects a message with the test signature after DATA, naming the virus; spamd is not asked', async () => {
      const spamdBefore = sa().requestCount()
      const clamdBefore = cl().scanCount()
      const captured = hk().captured().length
      const r = await send('2001:db8:7::10', V6MX, message('infected', `Please run this:\n${CLAMD_TEST_SIGNATURE}\n`))
      assert.equal(r.data?.code, 354, r.transcript)
      assert.equal(r.dataEnd?.code, 550, r.transcript)
      assert.equal(r.dataEnd?.text, `Message is infected with ${CLAMD_TEST_VIRUS}`)
      await poll(() => (cl().scanCount() === clamdBefore + 1 ? true : undefined), 5000, 'the scan in the clamd log')
      assert.match(cl().log(), new RegExp(`: ${CLAMD_TEST_VIRUS.replace(/\./g, '\\.')} FOUND$`, 'm'))
      // clamd's DENY ends the data_post hooks: spamassassin (listed after it) never runs.
      assert.equal(sa().requestCount(), spamdBefore)
      assert.equal(hk().captured().length, captured)
    })

    it('accepts a clean message from an IPv6 peer with X-Spam-* headers; spamd counted it', async () => {
      const spamdBefore = sa().requestCount()
      const captured = hk().captured().length
      const r = await send('2001:db8:7::10', V6MX, message('clean v6', 'Nothing to see here.'))
      assert.equal(r.dataEnd?.code, 250, r.transcript)
      const c = (await hk().waitForCaptured(captured + 1))[captured]
      assert.equal(c.meta.remote_ip, '2001:db8:7::10')
      assert.match(c.raw, /^X-Spam-Status: No, score=-?\d+\.\d required=5\.0/m)
      assert.match(c.raw, /^X-Spam-Checker-Version: SpamAssassin /m)
      assert.deepEqual(pluginResults(c.meta, 'clamd').pass, ['clean'])
      assert.equal(typeof pluginResults(c.meta, 'spamassassin').score, 'number')
      // The only spamd request since the infected message above: that one was never scored.
      assert.equal(await sa().waitForRequests(spamdBefore + 1), spamdBefore + 1)
    })

    it('scans an IPv4 peer too', async () => {
      const spamdBefore = sa().requestCount()
      const clamdBefore = cl().scanCount()
      const captured = hk().captured().length
      const bad = await send('192.0.2.10', V4MX, message('infected v4', CLAMD_TEST_SIGNATURE))
      assert.equal(bad.dataEnd?.code, 550, bad.transcript)
      assert.match(bad.dataEnd?.text ?? '', new RegExp(CLAMD_TEST_VIRUS.replace(/\./g, '\\.')))
      const ok = await send('192.0.2.10', V4MX, message('clean v4', 'Nothing to see here either.'))
      assert.equal(ok.dataEnd?.code, 250, ok.transcript)
      const c = (await hk().waitForCaptured(captured + 1))[captured]
      assert.equal(c.meta.remote_ip, '192.0.2.10')
      assert.match(c.raw, /^X-Spam-Status: No, /m)
      assert.equal(await sa().waitForRequests(spamdBefore + 1), spamdBefore + 1)
      await poll(() => (cl().scanCount() === clamdBefore + 2 ? true : undefined), 5000, 'two scans in the clamd log')
    })

    it('rejects GTUBE after DATA with the spamassassin reject_threshold', async () => {
      const spamdBefore = sa().requestCount()
      const captured = hk().captured().length
      const r = await send('2001:db8:7::11', V6MX, message('gtube', GTUBE))
      assert.equal(r.dataEnd?.code, 550, r.transcript)
      assert.equal(r.dataEnd?.text, 'spam score exceeded threshold')
      assert.equal(await sa().waitForRequests(spamdBefore + 1), spamdBefore + 1)
      assert.equal(hk().captured().length, captured)
    })

    it('scans loopback peers too: the plugins\' [check] private_ip/local_ip default to true', async () => {
      const r = await send('127.0.0.1', V4MX, message('loopback', CLAMD_TEST_SIGNATURE))
      assert.equal(r.dataEnd?.code, 550, r.transcript)
    })

    // haraka-net-utils 1.9.3 (connection.remote.is_private) counts 127/8 and ::1 as local and
    // private, and the IPv4 documentation nets (192.0.2/24, 198.51.100/24, 203.0.113/24) as
    // private; 2001:db8::/32 is neither. So with private_ip=false the IPv4 test peers are skipped.
    describe('with {check: {private_ip: false, local_ip: false}}', () => {
      let skipping: HarakaServer | undefined
      before(async () => {
        const check = { check: { private_ip: false, local_ip: false } }
        skipping = await HarakaServer.start({
          listen: [`[${V6MX}]:2525`, `${V4MX}:2525`],
          plugins: ['clamd', 'spamassassin', 'rcpt_to.in_host_list', 'queue-capture'],
          config: { 'clamd.ini': clamdIni(cl(), check), 'spamassassin.ini': spamassassinIni(sa(), check) },
        })
      })
      after(async () => skipping?.stop())

      const send2525 = (localAddress: string, host: string, subject: string) =>
        smtpSession({
          host, port: 2525, localAddress, ehlo: 'client.other.test',
          mailFrom: 'a@allowed.test', rcptTo: ['user@rcpt.test'], data: message(subject, CLAMD_TEST_SIGNATURE),
        })

      it('skips loopback and 192.0.2.0/24 peers unscanned, still scans 2001:db8:7::/64 peers', async () => {
        const h = skipping as HarakaServer
        const spamdBefore = sa().requestCount()
        const clamdBefore = cl().scanCount()
        const lo = await send2525('127.0.0.1', V4MX, 'loopback skipped')
        assert.equal(lo.dataEnd?.code, 250, lo.transcript)
        const v4 = await send2525('192.0.2.10', V4MX, 'test-net-1 skipped')
        assert.equal(v4.dataEnd?.code, 250, v4.transcript)
        const [c1, c2] = await h.waitForCaptured(2)
        assert.equal(c1.meta.remote_ip, '127.0.0.1')
        assert.deepEqual(pluginResults(c1.meta, 'clamd').skip, ['local_ip', 'private_ip'])
        assert.deepEqual(pluginResults(c1.meta, 'spamassassin').skip, ['local_ip', 'private_ip'])
        assert.equal(c2.meta.remote_ip, '192.0.2.10')
        assert.deepEqual(pluginResults(c2.meta, 'clamd').skip, ['private_ip'])
        assert.deepEqual(pluginResults(c2.meta, 'spamassassin').skip, ['private_ip'])
        for (const c of [c1, c2]) assert.doesNotMatch(c.raw, /^X-Spam-/m)
        const v6 = await send2525('2001:db8:7::12', V6MX, 'public scanned')
        assert.equal(v6.dataEnd?.code, 550, v6.transcript)
        await poll(() => (cl().scanCount() === clamdBefore + 1 ? true : undefined), 5000, 'one scan in the clamd log')
        assert.equal(sa().requestCount(), spamdBefore)
      })
    })
  })
})
