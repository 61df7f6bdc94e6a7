// mx6-receive end to end: a real Haraka (with haraka-plugin-spf and -dkim) in the
// test namespace, real SPF/DKIM records served by the test DNS, a private Redis,
// and public-looking IPv6/IPv4 peers.
import assert from 'node:assert/strict'
import path from 'node:path'
import type { HarakaServer } from '../support/haraka'
import { poll, sleep } from '../support/proc'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { dkimSign, smtpSession, swaks, type SessionResult } from '../support/smtp'

const KEYS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'dkim')

function plainMessage(from: string, to: string, subject: string): string {
  return [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@test>`, '', 'Hello over IPv6.', ''].join('\r\n')
}

interface Send {
  peer: string
  mailFrom: string
  from?: string
  rcpt?: string[]
  data?: string | Buffer
  host?: string
  port?: number
}

function send(o: Send): Promise<SessionResult> {
  const rcpt = o.rcpt ?? ['bob@rcpt.test']
  return smtpSession({
    host: o.host ?? (o.peer.includes(':') ? V6MX : V4MX),
    port: o.port ?? 25,
    localAddress: o.peer,
    ehlo: 'client.other.test',
    mailFrom: o.mailFrom,
    rcptTo: rcpt,
    data: o.data ?? plainMessage(o.from ?? o.mailFrom, rcpt.join(', '), `test from ${o.peer}`),
  })
}

/** The code the message finally got: the DATA reply, or the first RCPT failure. */
function outcome(r: SessionResult): string {
  if (r.dataEnd) return `data:${r.dataEnd.code}`
  return `rcpt:${r.rcpt.map((x) => x.code).join(',')}`
}

describe('e2e: mx6-receive in a real Haraka', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`, `${V4MX}:25`, '[::1]:25'], ini: '[main]\nlint_interval=1' })
  let redis: RedisServer
  let haraka: HarakaServer

  before(async () => {
    ;({ redis, haraka } = rx)
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::100/120', 'partner relay')
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner')
    await redis.cli('HSET', 'mx6:domain:allow', 'fail.test', 'whitelisted, but its SPF says -all')
    await redis.cli('SADD', 'mx6:book:bob@rcpt.test', 'friend@other.test', 'friend@fail.test')
  })

  it('defers an unknown IPv6 peer after DATA with 451 4.7.26 (undecided=wait)', async () => {
    const r = await send({ peer: '2001:db8:7::20', mailFrom: 'someone@neutral.test' })
    assert.equal(r.rcpt[0].code, 250)
    assert.equal(outcome(r), 'data:451')
    assert.match(r.dataEnd!.lines[0], /^451.4\.7\.26 /)
    assert.match(haraka.log(), /\[mx6-receive\] data_post verdict=defer rule=none/)
  })

  it('accepts a peer inside an allow-listed CIDR at RCPT', async () => {
    const before = haraka.captured().length
    const r = await send({ peer: '2001:db8:7::1a0', mailFrom: 'someone@neutral.test' })
    assert.equal(outcome(r), 'data:250')
    const got = (await haraka.waitForCaptured(before + 1)).at(-1)!
    assert.equal(got.meta.remote_ip, '2001:db8:7::1a0')
    const res = got.meta.results?.['mx6-receive'] as Record<string, unknown>
    assert.equal(res.rule, 'ip:allow')
    assert.match(String(res.reason), /2001:db8:7::100\/120 \("partner relay"\)/)
  })

  it('accepts a whitelisted domain with SPF pass and an aligned From', async () => {
    const r = await send({ peer: '2001:db8:7::30', mailFrom: 'news@allowed.test' })
    assert.equal(outcome(r), 'data:250')
    const res = haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>
    assert.equal(res.rule, 'domain:allow')
  })

  it('defers a whitelisted domain whose SPF fails', async () => {
    const r = await send({ peer: '2001:db8:7::31', mailFrom: 'news@fail.test' })
    assert.equal(outcome(r), 'data:451')
  })

  it('accepts DKIM-signed mail of a whitelisted domain after DATA (envelope not authenticated)', async () => {
    const data = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'signed', body: 'Signed over IPv6.' })
    const r = await send({ peer: '2001:db8:7::32', mailFrom: 'bounce@neutral.test', data })
    assert.equal(outcome(r), 'data:250')
    const meta = haraka.captured().at(-1)!.meta
    assert.deepEqual((meta.results?.dkim as Record<string, unknown>).pass, ['allowed.test'])
    assert.equal((meta.results?.['mx6-receive'] as Record<string, unknown>).phase, 'data_post')
  })

  it('defers DKIM mail whose body was altered after signing', async () => {
    const signed = await dkimSign({ domain: 'allowed.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'tampered', body: 'Pay 10 EUR.' })
    const r = await send({ peer: '2001:db8:7::33', mailFrom: 'bounce@neutral.test', data: signed.toString('latin1').replace('Pay 10 EUR.', 'Pay 9999 EUR.') })
    assert.equal(outcome(r), 'data:451')
  })

  it('defers a spoofed From of a whitelisted domain (SPF passes for another domain, no DKIM)', async () => {
    const r = await send({ peer: '2001:db8:7::34', mailFrom: 'x@other.test', from: 'ceo@allowed.test' })
    assert.equal(r.rcpt[0].code, 250)
    assert.equal(outcome(r), 'data:451')
    assert.match(haraka.log(), /not relaxed-aligned with a passing SPF\/DKIM domain/)
  })

  it('defers a From of a whitelisted domain signed by another domain', async () => {
    const data = await dkimSign({ domain: 'other.test', selector: 's1', keyFile: path.join(KEYS, 'other.test.s1.key'), from: 'ceo@allowed.test', to: 'bob@rcpt.test', subject: 'other signer', body: 'x' })
    const r = await send({ peer: '2001:db8:7::35', mailFrom: 'bounce@neutral.test', data })
    assert.equal(outcome(r), 'data:451')
  })

  it('accepts an address-book sender only when authenticated, with the same reply otherwise', async () => {
    const ok = await send({ peer: '2001:db8:7::40', mailFrom: 'friend@other.test', rcpt: ['bob+news@rcpt.test'] })
    assert.equal(outcome(ok), 'data:250')
    assert.equal((haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, unknown>).rule, 'book')
    // friend@fail.test is in the same book, but SPF fails: not accepted.
    const listed = await send({ peer: '2001:db8:7::41', mailFrom: 'friend@fail.test' })
    const unlisted = await send({ peer: '2001:db8:7::41', mailFrom: 'stranger@fail.test' })
    assert.equal(outcome(listed), 'data:451')
    assert.equal(outcome(unlisted), 'data:451')
    assert.deepEqual(listed.dataEnd!.lines, unlisted.dataEnd!.lines)
  })

  it('leaves IPv4 peers alone, whatever the lists say', async () => {
    const before = haraka.captured().length
    const r = await send({ peer: '192.0.2.10', mailFrom: 'someone@fail.test' })
    assert.equal(outcome(r), 'data:250')
    const got = (await haraka.waitForCaptured(before + 1)).at(-1)!
    assert.equal(got.meta.remote_ip, '192.0.2.10')
    assert.equal(got.meta.results?.['mx6-receive'], undefined, 'untouched: no results entry either')
  })

  it('an entry added with redis-cli takes effect on the next transaction', async () => {
    assert.equal(outcome(await send({ peer: '2001:db8:7::50', mailFrom: 'a@neutral.test' })), 'data:451')
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::50', 'added by hand')
    assert.equal(outcome(await send({ peer: '2001:db8:7::50', mailFrom: 'a@neutral.test' })), 'data:250')
  })

  it('ignores a non-canonical entry and logs it once', async () => {
    await redis.cli('HSET', 'mx6:ip:allow', '2001:DB8:7::60', 'typed in upper case')
    assert.equal(outcome(await send({ peer: '2001:db8:7::60', mailFrom: 'a@neutral.test' })), 'data:451')
    await poll(() => (/"2001:DB8:7::60" never matches/.test(haraka.log()) ? true : undefined), 5000, 'lint warning')
    await sleep(2500) // two more scans at lint_interval=1
    const hits = haraka.log().match(/"2001:DB8:7::60" never matches: not in canonical form.*canonical form: 2001:db8:7::60/g) ?? []
    assert.equal(hits.length, 1)
  })

  it('swaks sees the 451 and exits 26 (DATA failed) for an unknown IPv6 peer', async () => {
    const r = await swaks(['--server', V6MX, '--port', '25', '--local-interface', '2001:db8:7::70', '--ehlo', 'client.other.test', '--from', 'a@neutral.test', '--to', 'bob@rcpt.test'])
    assert.equal(r.code, 26, r.stdout)
    assert.match(r.stdout, /<\*\* 451.4\.7\.26 /)
  })

  it('skips a private IPv6 peer (loopback) by default', async () => {
    const r = await send({ peer: '::1', host: '::1', mailFrom: 'someone@neutral.test' })
    assert.equal(outcome(r), 'data:250')
    // Judged, it would have no basis and be deferred; left alone, it gets no results entry.
    assert.equal(haraka.captured().at(-1)!.meta.results?.['mx6-receive'], undefined)
  })

  it('keeps per-day counters per verdict and rule in Redis', async () => {
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '')
    const stats = await redis.cli('HGETALL', `mx6:stats:${day}`)
    assert.match(stats, /data_post\.defer\.none\n[1-9]/)
    assert.match(stats, /rcpt\.trusted\.ip:allow\n[1-9]/)
    assert.doesNotMatch(stats, /ipv4/)
  })

  it('answers odd input with a defined reply and keeps running', async () => {
    const nul = await send({ peer: '2001:db8:7::90', mailFrom: '', from: 'postmaster@neutral.test' })
    assert.equal(outcome(nul), 'data:451', 'null sender, nothing known: deferred')
    const upper = await send({ peer: '2001:db8:7::91', mailFrom: 'FRIEND@Other.TEST', rcpt: ['BOB@rcpt.test'] })
    assert.equal(outcome(upper), 'data:250', 'address book match is case-insensitive')
    const utf8 = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::92', ehlo: 'client.other.test', mailFrom: 'jürgen@bücher.test', rcptTo: ['bob@rcpt.test'], data: plainMessage('a@neutral.test', 'bob@rcpt.test', 'utf8') })
    assert.ok([250, 451, 501, 550, 555].includes(utf8.dataEnd?.code ?? utf8.rcpt[0]?.code ?? utf8.mail.code), utf8.transcript)
    const long = await send({ peer: '2001:db8:7::93', mailFrom: `${'a'.repeat(300)}@neutral.test` })
    assert.ok(long.mail.code >= 500 || outcome(long) === 'data:451', long.transcript)
    const garbage = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::94', ehlo: 'client.other.test', mailFrom: 'not an address', rcptTo: ['bob@rcpt.test'] })
    assert.ok(garbage.mail.code >= 500, garbage.transcript)
    assert.doesNotMatch(haraka.log(), /decision failed|TypeError|ReferenceError/)
    assert.equal(outcome(await send({ peer: '2001:db8:7::1a2', mailFrom: 'a@neutral.test' })), 'data:250', 'still serving')
  })

  it('Redis stopped: IPv6 gets 451 (never 250, never 5xx), IPv4 still accepted; recovers by itself', async () => {
    await redis.stop()
    const v6 = await send({ peer: '2001:db8:7::1a1', mailFrom: 'a@neutral.test' })
    assert.equal(outcome(v6), 'rcpt:451')
    assert.match(v6.rcpt[0].lines[0], /^451.4\.7\.26 /)
    assert.equal(outcome(await send({ peer: '192.0.2.11', mailFrom: 'a@neutral.test' })), 'data:250')
    await redis.restart()
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::100/120', 'partner relay')
    const back = await poll(async () => {
      const r = await send({ peer: '2001:db8:7::1a1', mailFrom: 'a@neutral.test' })
      return outcome(r) === 'data:250' ? r : undefined
    }, 15000, 'IPv6 decisions after Redis returned', 200)
    assert.equal(outcome(back), 'data:250')
    assert.match(haraka.log(), /\[mx6-receive\] redis .*: back after \d+ s; \d+ decisions deferred or writes dropped meanwhile/)
  })
})

describe('e2e: mx6-receive at Haraka log level debug', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:2527`, `${V4MX}:2527`], config: { 'log.ini': '[main]\nlevel=debug\ntimestamps=true\n' } })

  it('logs the lines made only at debug level (an IPv4 skip, a verdict repeated after DATA) as text', async () => {
    await rx.redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::100/120', 'partner relay')
    // Two recipients from the IPv4 peer: still one debug line for its transaction.
    for (const peer of ['192.0.2.10', '2001:db8:7::101']) assert.equal(outcome(await send({ peer, mailFrom: 'someone@neutral.test', port: 2527, rcpt: ['bob@rcpt.test', 'carol@rcpt.test'] })), 'data:250', peer)
    const lines = await poll(() => {
      const log = rx.haraka.log()
      const skip = /\[DEBUG\] \[[^\]]+\] \[mx6-receive\] rcpt verdict=skip rule=ipv4: IPv4 peer 192\.0\.2\.10$/m.exec(log)
      const repeat = /\[DEBUG\] \[[^\]]+\] \[mx6-receive\] data_post verdict=trusted rule=ip:allow: 2001:db8:7::101 in ip:allow 2001:db8:7::100\/120 \("partner relay"\) \(\d+\.\d{3} ms\)$/m.exec(log)
      return skip && repeat ? [skip[0], repeat[0]] : undefined
    }, 5000, 'the two debug lines in the log')
    // One line per transaction for the peer left alone, the same text as the poll found.
    assert.equal(rx.haraka.log().split('\n').filter((l) => l.endsWith(lines[0].slice(lines[0].indexOf('[mx6-receive]')))).length, 1)
    assert.doesNotMatch(rx.haraka.log(), /\[mx6-receive\] (DebugLine|\[object)/)
  })
})

describe('e2e: mx6-receive with undecided=defer (SPF-only deployment)', function () {
  this.timeout(60000)
  const rx = useReceiver({
    listen: [`[${V6MX}]:2526`, `${V4MX}:2526`],
    plugins: ['spf', 'mx6-receive', 'rcpt_to.in_host_list', 'queue-capture'],
    ini: '[main]\nundecided=defer',
  })
  let redis: RedisServer
  let haraka: HarakaServer

  before(async () => {
    ;({ redis, haraka } = rx)
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner')
  })

  it('defers an unknown IPv6 peer at RCPT: the body is never sent over IPv6', async () => {
    const r = await send({ peer: '2001:db8:7::80', mailFrom: 'a@neutral.test', host: V6MX, port: 2526 })
    assert.equal(outcome(r), 'rcpt:451')
    assert.equal(r.data, undefined)
  })

  it('accepts SPF-pass mail of a whitelisted domain at RCPT', async () => {
    const r = await send({ peer: '2001:db8:7::81', mailFrom: 'news@allowed.test', host: V6MX, port: 2526 })
    assert.equal(r.rcpt[0].code, 250)
    assert.equal(outcome(r), 'data:250')
  })

  it('with several recipients, defers only those without a basis at RCPT', async () => {
    await redis.cli('SADD', 'mx6:book:carol@rcpt.test', 'friend@other.test')
    const r = await send({ peer: '2001:db8:7::82', mailFrom: 'friend@other.test', rcpt: ['carol@rcpt.test', 'dave@rcpt.test'], host: V6MX, port: 2526 })
    assert.deepEqual(r.rcpt.map((x) => x.code), [250, 451])
    assert.equal(outcome(r), 'data:250')
    const meta = (await haraka.waitForCaptured(2)).at(-1)!.meta
    assert.deepEqual(meta.rcpt_to, ['carol@rcpt.test'])
  })
})
