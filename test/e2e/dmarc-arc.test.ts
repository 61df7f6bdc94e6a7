// DMARC and ARC end to end: a real Haraka (spf, dkim, mx6-receive), the policy records, DKIM
// and ARC keys served by the test DNS, a private Redis. strict.test publishes p=reject with
// adkim=s aspf=s; fwd.test is a forwarder that ARC-seals with a key in DNS.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { sealMessage, type ARCSealOptions } from 'mailauth'
import { main } from '../../scripts/mx6ctl'
import { run } from '../support/proc'
import { MX6, useReceiver, V6MX } from '../support/receiver'
import { dkimSign, smtpSession, type SessionResult } from '../support/smtp'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const KEYS = path.join(ROOT, 'test', 'fixtures', 'dkim')
const AUTH_FAIL = /^451 4\.7\.26 Authentication failed/

let seq = 0
function send(host: string, peer: string, mailFrom: string, data: string | Buffer): Promise<SessionResult> {
  return smtpSession({ host, port: 25, localAddress: peer, ehlo: 'x.neutral.test', mailFrom, rcptTo: ['bob@rcpt.test'], data })
}

/** A message of ceo@strict.test, signed by strict.test (the key in DNS) or not. */
async function fromStrict(signed: boolean): Promise<Buffer> {
  const body = `Quarterly figures ${++seq}.`
  if (signed) return dkimSign({ domain: 'strict.test', selector: 's1', keyFile: path.join(KEYS, 'allowed.test.s1.key'), from: 'ceo@strict.test', to: 'bob@rcpt.test', subject: 'figures', body })
  return Buffer.from(`From: ceo@strict.test\r\nTo: bob@rcpt.test\r\nSubject: figures\r\nMessage-ID: <dmarc-${process.pid}-${seq}@test>\r\n\r\n${body}\r\n`)
}

/**
 * The signed message as a mailing list at fwd.test passes it on: a footer added to the body
 * (which breaks strict.test's DKIM signature), then one ARC set sealed with fwd.test's key,
 * whose ARC-Authentication-Results records what fwd.test saw on arrival.
 */
async function forwarded(): Promise<Buffer> {
  const original = (await fromStrict(true)).toString('latin1')
  const altered = Buffer.from(original.replace(/\r\n$/, '\r\n--\r\nfwd.test list footer\r\n'), 'latin1')
  const opts = {
    signingDomain: 'fwd.test',
    selector: 'arc',
    privateKey: fs.readFileSync(path.join(KEYS, 'other.test.s1.key'), 'utf8'),
    authResults: 'mx.fwd.test; dkim=pass header.d=strict.test header.s=s1; spf=pass smtp.mailfrom=x@mail.strict.test; dmarc=pass header.from=strict.test',
    cv: 'none',
  }
  return Buffer.concat([await sealMessage(altered, opts as ARCSealOptions), altered])
}

/** The Authentication-Results field of a 550 reply, unfolded. */
function arFromReply(lines: string[]): string {
  const text = lines.map((l) => l.slice(10)).join('\n')
  const m = /Authentication-Results: ([^\n]*(?:\n [^\n]*)*)/.exec(text)
  assert.ok(m, text)
  return m[1].replace(/\n /g, ' ')
}

/** mx6ctl explain --json for the forwarded message as the plugin saw it (the DKIM signature broken by the footer). */
async function explainForwarded(dir: string, message: Buffer, peer: string): Promise<Record<string, any>> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mx6-arc-')), 'message.eml')
  fs.writeFileSync(file, message)
  try {
    const args = ['--config', dir, 'explain', '--ip', peer, '--helo', 'x.neutral.test', '--mail-from', 'bounce@fwd.test', '--rcpt', 'bob@rcpt.test', '--spf', 'none']
    return JSON.parse(await ctl(...args, '--from', 'ceo@strict.test', '--dkim-fail', 'strict.test', '--message', file, '--json')) as Record<string, any>
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  }
}

async function ctl(...argv: string[]): Promise<string> {
  const out: string[] = []
  const code = await main(argv, { out: (t) => void out.push(t), err: (t) => void out.push(t) })
  assert.equal(code, 0, out.join('\n'))
  return out.join('\n')
}

describe('e2e: DMARC of the From domain, ARC of trusted forwarders', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`, `[${MX6}]:25`], ini: `[mx6]\nlisteners=${MX6}` })
  const last = () => rx.haraka.captured().at(-1)!.meta.results?.['mx6-receive'] as Record<string, string>
  before(async () => rx.redis.cli('HSET', 'mx6:domain:allow', 'strict.test', 'partner'))

  it('p=reject adkim=s: a spoofed From with an SPF-passing envelope of a relaxed-aligned subdomain is deferred', async () => {
    const mark = rx.haraka.logSize()
    const r = await send(V6MX, '2001:db8:7::70', 'x@mail.strict.test', await fromStrict(false))
    assert.match(r.dataEnd?.lines[0] ?? '', AUTH_FAIL, r.transcript)
    assert.match(rx.haraka.logSince(mark), /data_post verdict=defer rule=auth-fail: failed authentication \(dmarc=fail \(p=REJECT\) header\.from=strict\.test\).*\[dmarc=fail \(p=REJECT\) header\.from=strict\.test\]/)
  })

  it('on the MX6 listener the 550 carries dmarc=fail in an Authentication-Results that python3-authres parses', async () => {
    const r = await send(MX6, '2001:db8:7::71', 'x@mail.strict.test', await fromStrict(false))
    assert.equal(r.dataEnd?.code, 550, r.transcript)
    const ar = arFromReply(r.dataEnd!.lines)
    const parsed = await run('/usr/bin/python3', [path.join(ROOT, 'test', 'support', 'parse_authres.py')], { input: ar })
    assert.equal(parsed.code, 0, parsed.stderr)
    const results = (JSON.parse(parsed.stdout) as { results: Array<[string, string]> }).results.map((x) => `${x[0]}=${x[1]}`)
    assert.deepEqual(results, ['spf=pass', 'dmarc=fail'], ar)
  })

  it('the same message signed by strict.test: DMARC pass, accepted by domain:allow', async () => {
    const r = await send(V6MX, '2001:db8:7::72', 'x@mail.strict.test', await fromStrict(true))
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['trusted', 'domain:allow'], last().reason)
    assert.match(last().auth, /^dmarc=pass \(p=REJECT\) header\.from=strict\.test$/)
    assert.match(rx.haraka.captured().at(-1)!.raw, /^Authentication-Results: [^\r\n]*(\r\n[ \t][^\r\n]*)*dmarc=pass/m)
  })

  it('forwarded with a fresh ARC set from another IPv6 address: deferred while fwd.test is not a trusted sealer', async () => {
    const mark = rx.haraka.logSize()
    const msg = await forwarded()
    const r = await send(V6MX, '2001:db8:7::73', 'bounce@fwd.test', msg)
    assert.match(r.dataEnd?.lines[0] ?? '', AUTH_FAIL, r.transcript)
    const line = rx.haraka.logSince(mark).split('\n').find((l) => l.includes('data_post verdict=')) ?? ''
    assert.match(line, /verdict=defer rule=auth-fail: .*dmarc=fail \(p=REJECT\)/, line)
    assert.match(line, /arc=pass i=1 sealer=fwd\.test/, line)
    // explain --message validates the same chain and decides alike; it suggests trusting the sealer.
    const e = await explainForwarded(rx.haraka.dir, msg, '2001:db8:7::73')
    assert.equal(`data_post verdict=${e.final.verdict} rule=${e.final.rule}: ${e.final.reason}`, /data_post verdict=.*?(?= \[dmarc=)/.exec(line)?.[0])
    assert.deepEqual([e.dmarc.result, e.arc.reason], ['fail', 'arc=pass i=1 sealer=fwd.test (dmarc=pass)'])
    assert.ok(e.changes.some((c: { commands: string[] }) => c.commands.join() === 'mx6ctl arc add fwd.test'), JSON.stringify(e.changes))
  })

  it('the same forwarded message once fwd.test is in mx6:arc:trusted (mx6ctl arc add): accepted, the rule and reason name the ARC path', async () => {
    await ctl('--config', rx.haraka.dir, 'arc', 'add', 'fwd.test', 'our mailing list host')
    assert.equal(await rx.redis.cli('HGET', 'mx6:arc:trusted', 'fwd.test'), 'our mailing list host')
    const msg = await forwarded()
    const r = await send(V6MX, '2001:db8:7::73', 'bounce@fwd.test', msg)
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.deepEqual([last().verdict, last().rule], ['trusted', 'domain:allow'])
    assert.match(last().reason, /authenticated via arc:trusted fwd\.test \("our mailing list host"\) \(arc=pass i=1 sealer=fwd\.test \(dmarc=pass\)\), which overrides .*dmarc=fail .*domain:allow strict\.test/, last().reason)
    const e = await explainForwarded(rx.haraka.dir, msg, '2001:db8:7::73')
    assert.deepEqual([e.final.verdict, e.final.rule, e.final.reason], ['trusted', 'domain:allow', last().reason])
    await ctl('--config', rx.haraka.dir, 'arc', 'rm', 'fwd.test')
  })

  it('a forwarded message altered after the seal: the chain fails and adds nothing, even from a trusted sealer', async () => {
    await ctl('--config', rx.haraka.dir, 'arc', 'add', 'fwd.test', 'our mailing list host')
    const tampered = Buffer.from((await forwarded()).toString('latin1').replace('Quarterly figures', 'Quarterly Figures'), 'latin1')
    const mark = rx.haraka.logSize()
    const r = await send(V6MX, '2001:db8:7::74', 'bounce@fwd.test', tampered)
    assert.match(r.dataEnd?.lines[0] ?? '', AUTH_FAIL, r.transcript)
    assert.match(rx.haraka.logSince(mark), /data_post verdict=defer rule=auth-fail: .*arc=fail/)
    await ctl('--config', rx.haraka.dir, 'arc', 'rm', 'fwd.test')
  })
})
