// The postmaster's alternative to mx6-receive: the same policy built with rspamd
// (test/fixtures/rspamd/) behind Haraka's own haraka-plugin-rspamd, without any haraka-mx6
// plugin. A real Haraka and a private rspamd in the test namespace; SPF and DKIM records come
// from the test DNS, as in receive.test.ts, and each case asserts the SMTP replies.
import assert from 'node:assert/strict'
import path from 'node:path'
import { CaptureMeta, HarakaServer } from '../support/haraka'
import { requireTestbed } from '../support/net'
import { poll } from '../support/proc'
import { RspamdServer, rspamdIni } from '../support/rspamd'
import { dkimSign, smtpSession, type SessionResult } from '../support/smtp'

const V6MX = '2001:db8:25::25'
const V4MX = '198.51.100.25'
const KEYS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'dkim')

let seq = 0
function plainMessage(from: string, subject: string): string {
  seq++
  return [`From: ${from}`, 'To: bob@rcpt.test', `Subject: ${subject}`, `Message-ID: <rspamd-${process.pid}-${seq}@test>`, '', 'Hello over IPv6.', ''].join('\r\n')
}

interface Send {
  peer: string
  mailFrom: string
  /** The From header, default mailFrom. */
  from?: string
  data?: string | Buffer
}

function send(o: Send): Promise<SessionResult> {
  return smtpSession({
    host: o.peer.includes(':') ? V6MX : V4MX,
    port: 25,
    localAddress: o.peer,
    ehlo: 'client.other.test',
    mailFrom: o.mailFrom,
    rcptTo: ['bob@rcpt.test'],
    data: o.data ?? plainMessage(o.from ?? o.mailFrom, `test from ${o.peer}`),
  })
}

/** The code the message finally got: the DATA reply, or the first RCPT failure. */
function outcome(r: SessionResult): string {
  if (r.dataEnd) return `data:${r.dataEnd.code}`
  return `rcpt:${r.rcpt.map((x) => x.code).join(',')}`
}

/** The rspamd symbols haraka-plugin-rspamd recorded for a captured message. */
function symbols(meta: CaptureMeta): string[] {
  const r = meta.results?.rspamd as { symbols?: Record<string, number> } | undefined
  return Object.keys(r?.symbols ?? {}).sort()
}

describe('e2e: the same policy with rspamd (haraka-plugin-rspamd, no mx6-receive)', function () {
  this.timeout(60000)
  let rspamd: RspamdServer | undefined
  let haraka: HarakaServer | undefined
  const hk = (): HarakaServer => haraka as HarakaServer
  const rs = (): RspamdServer => rspamd as RspamdServer

  before(async function () {
    this.timeout(45000)
    requireTestbed()
    rspamd = await RspamdServer.start({ ipAllow: ['2001:db8:7::100/120'], domainAllow: ['allowed.test'] })
    haraka = await HarakaServer.start({
      listen: [`[${V6MX}]:25`, `${V4MX}:25`],
      // Haraka's own plugins only: no mx6ctl install, no spf/dkim plugins (rspamd checks both).
      install: async () => undefined,
      plugins: ['rspamd', 'rcpt_to.in_host_list', 'queue-capture'],
      config: { 'rspamd.ini': rspamdIni(rspamd) },
    })
  })
  after(async () => {
    await haraka?.stop()
    await rspamd?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return
    if (haraka) console.log(haraka.log().slice(-4000))
    if (rspamd) console.log(rspamd.log().split('\n').filter((l) => /rspamd_task_write_log|error|warn/.test(l)).slice(-20).join('\n'))
  })

  /** Sends and, for a 250, returns the captured message's rspamd symbols. */
  async function accepted(o: Send): Promise<string[]> {
    const before = hk().captured().length
    const r = await send(o)
    assert.equal(outcome(r), 'data:250', r.transcript)
    return symbols((await hk().waitForCaptured(before + 1)).at(-1)!.meta)
  }

  async function deferred(o: Send): Promise<SessionResult> {
    const r = await send(o)
    assert.equal(r.rcpt[0].code, 250, r.transcript)
    assert.equal(outcome(r), 'data:451', r.transcript)
    // DSN.sec_unauthorized in the plugin: 4.7.1, with the fixture's force_actions message.
    assert.match(r.dataEnd!.lines[0], /^451 4\.7\.1 IPv6 mail from unknown senders is deferred, retry over IPv4 \(mx6\)$/)
    return r
  }

  it('runs privately: main process plus workers, CPU readable from /proc', () => {
    const pids = rs().pids()
    assert.equal(pids[0], rs().pid)
    assert.ok(pids.length >= 2, `main and at least one worker: ${pids.join(',')}`)
    assert.ok(rs().cpuMs() > 0)
  })

  it('accepts an IPv6 peer inside an allow-listed CIDR (multimap on the client IP)', async () => {
    const syms = await accepted({ peer: '2001:db8:7::1a0', mailFrom: 'someone@neutral.test' })
    assert.ok(syms.includes('MX6_IP_ALLOW'), syms.join(','))
  })

  it('soft-rejects an unknown IPv6 peer with a neutral-SPF sender (451)', async () => {
    await deferred({ peer: '2001:db8:7::20', mailFrom: 'someone@neutral.test' })
  })

  it('accepts an allow-listed domain with SPF pass aligned with From (whitelist module)', async () => {
    const syms = await accepted({ peer: '2001:db8:7::30', mailFrom: 'news@allowed.test' })
    assert.ok(syms.includes('R_SPF_ALLOW') && syms.includes('MX6_FROM_ALIGNED') && syms.includes('MX6_DOMAIN_ALLOW'), syms.join(','))
  })

  it('soft-rejects the same domain in From when nothing authenticates it (SPF neutral, no DKIM)', async () => {
    await deferred({ peer: '2001:db8:7::31', mailFrom: 'x@neutral.test', from: 'ceo@allowed.test' })
  })

  it('soft-rejects a From of the listed domain when SPF passes only for another domain', async () => {
    await deferred({ peer: '2001:db8:7::34', mailFrom: 'x@other.test', from: 'ceo@allowed.test' })
  })

  it('soft-rejects an unlisted From even when the envelope domain is listed and passes SPF', async () => {
    await deferred({ peer: '2001:db8:7::35', mailFrom: 'news@allowed.test', from: 'ceo@other.test' })
  })

  it('accepts DKIM-signed mail of the listed domain with an unauthenticated envelope', async () => {
    const data = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'signed', body: 'Signed over IPv6.' })
    const syms = await accepted({ peer: '2001:db8:7::32', mailFrom: 'bounce@neutral.test', data })
    assert.ok(syms.includes('R_DKIM_ALLOW') && syms.includes('MX6_DOMAIN_ALLOW'), syms.join(','))
  })

  it('soft-rejects DKIM mail whose body was altered after signing', async () => {
    const signed = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'tampered', body: 'Pay 10 EUR.' })
    await deferred({ peer: '2001:db8:7::33', mailFrom: 'bounce@neutral.test', data: signed.toString('latin1').replace('Pay 10 EUR.', 'Pay 9999 EUR.') })
  })

  it('accepts an IPv4 peer whatever the sender (rspamd saw it and took no action)', async () => {
    const syms = await accepted({ peer: '192.0.2.10', mailFrom: 'someone@fail.test' })
    assert.ok(syms.includes('MX6_CLIENT_EXEMPT'), syms.join(','))
  })

  it('takes no action for private IPv6 peers, which mx6-receive skips too (asked directly)', async () => {
    for (const ip of ['fd00:6::10', 'fe80::1', '::1']) {
      const r = await rs().check(plainMessage('a@neutral.test', 'private'), { IP: ip, From: 'a@neutral.test', Helo: 'client.other.test' })
      assert.equal(r.action, 'no action', `${ip}: ${JSON.stringify(r.symbols)}`)
      assert.ok(r.symbols.MX6_CLIENT_EXEMPT, ip)
    }
    const r = await rs().check(plainMessage('a@neutral.test', 'public'), { IP: '2001:db8:7::20', From: 'a@neutral.test', Helo: 'client.other.test' })
    assert.equal(r.action, 'soft reject')
  })

  it('an address added to the IP allowlist map takes effect without a restart', async () => {
    await deferred({ peer: '2001:db8:7::50', mailFrom: 'a@neutral.test' })
    rs().setLists({ ipAllow: ['2001:db8:7::100/120', '2001:db8:7::50'] })
    // rspamd polls its map files (map_watch_interval=1s in the fixture).
    await poll(async () => ((await rs().check('Subject: probe\r\n\r\nx\r\n', { IP: '2001:db8:7::50' })).symbols.MX6_IP_ALLOW ? true : undefined), 10000, 'the new map entry', 200)
    await accepted({ peer: '2001:db8:7::50', mailFrom: 'a@neutral.test' })
  })

  // Last: stops rspamd.
  it('defers IPv6 mail when rspamd is down (fail-safe, like mx6-receive)', async () => {
    await rs().stop()
    assert.deepEqual(rs().pids(), [])
    const r = await send({ peer: '2001:db8:7::20', mailFrom: 'news@allowed.test' })
    // The plugin's [defer] error=true: a plain DENYSOFT, "450 Rspamd scan error".
    assert.match(outcome(r), /^data:4\d\d$/, r.transcript)
  })
})
