// ARC (RFC 8617): messages sealed in the test by mailauth itself, keys made here and served
// from a zone table through the injected resolver.
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { sealMessage, type ARCSealOptions } from 'mailauth'
import { CachingResolver, type Lookup, type RawReply } from '../../../plugins/lib/dns'
import { evaluateArc, hasArcHeader, type ArcOutcome } from '../../../plugins/mx6-receive/arc'
import { TableClient, type Zone } from '../../support/table-dns'

/** A TXT answer of one record, given in strings of at most 255 octets as DNS carries it. */
const txt = (record: string): RawReply => ({ rcode: 0, answers: [{ type: 16, ttl: 60, data: record.match(/.{1,255}/g) ?? [] }], authorities: [] })

interface Key {
  pem: string
  record: string
}
function rsaKey(): Key {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}` }
}

const message = (body = 'Hello,\r\n\r\nforwarded to you.\r\n') =>
  Buffer.from(
    'From: Alice <alice@example.com>\r\nTo: bob@dest.test\r\nSubject: ARC test\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n' +
      `Message-ID: <arc-test@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
  )

/** The message with one more ARC set on top, as a forwarder would add it. */
async function seal(msg: Buffer, domain: string, key: Key, authResults: string, cv: 'none' | 'pass' | 'fail'): Promise<Buffer> {
  const opts = { signingDomain: domain, selector: 'arc', privateKey: key.pem, authResults: `mx.${domain}; ${authResults}`, cv }
  return Buffer.concat([await sealMessage(msg, opts as ARCSealOptions), msg])
}

/** The message with its header fields named `name` (and their continuation lines) taken out. */
function without(msg: Buffer, name: string): Buffer {
  const [head, ...body] = msg.toString('latin1').split('\r\n\r\n')
  const kept = head.split(/\r\n(?![ \t])/).filter((f) => !f.toLowerCase().startsWith(`${name.toLowerCase()}:`))
  return Buffer.from([kept.join('\r\n'), ...body].join('\r\n\r\n'), 'latin1')
}

const DMARC_PASS = 'dkim=pass header.d=example.com header.s=s1; spf=pass smtp.mailfrom=alice@example.com; dmarc=pass header.from=example.com'
const UNALIGNED_DKIM = 'dkim=pass header.d=esp.test; spf=none smtp.mailfrom=bounces@esp.test; dmarc=fail header.from=example.com'

describe('arc: evaluateArc over messages sealed by mailauth', function () {
  this.timeout(10000)
  let fwd: Key, list: Key, other: Key
  let zone: Zone
  let oneHop: Buffer, twoHops: Buffer
  const resolver = (z: Zone = zone) => new CachingResolver(new TableClient(z), { negativeTtl: 0, maxTtl: 0 })
  const check = async (msg: Buffer, from: string | null = 'example.com', z?: Zone, timeoutMs = 2000) => evaluateArc(msg, from, resolver(z), timeoutMs)
  const expect = (got: ArcOutcome, want: Partial<ArcOutcome>) => {
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k as keyof ArcOutcome], v, `${k}: ${JSON.stringify(got)}`)
  }

  before(async () => {
    ;[fwd, list, other] = [rsaKey(), rsaKey(), rsaKey()]
    zone = { 'TXT arc._domainkey.fwd.test': txt(fwd.record), 'TXT arc._domainkey.list.test': txt(list.record) }
    oneHop = await seal(message(), 'fwd.test', fwd, DMARC_PASS, 'none')
    twoHops = await seal(oneHop, 'list.test', list, UNALIGNED_DKIM, 'pass')
  })

  it('a valid chain of one hop: pass, sealer fwd.test, authenticated by dmarc=pass', async () => {
    expect(await check(oneHop), { chain: 'pass', instance: 1, sealer: 'fwd.test', authenticated: 'dmarc=pass', temporary: false, reason: 'arc=pass i=1 sealer=fwd.test (dmarc=pass)' })
  })

  it('a valid chain of two hops: the sealer is the newest, its A-R counts (only an unaligned DKIM pass: null)', async () => {
    expect(await check(twoHops), { chain: 'pass', instance: 2, sealer: 'list.test', authenticated: null })
    assert.match((await check(twoHops)).reason, /^arc=pass i=2 sealer=list\.test \(no aligned pass/)
  })

  it('the body altered after sealing: fail', async () => {
    const altered = Buffer.from(oneHop.toString('latin1').replace('forwarded to you.', 'forwarded to you!'), 'latin1')
    expect(await check(altered), { chain: 'fail', sealer: 'fwd.test', authenticated: null, temporary: false })
    assert.match((await check(altered)).reason, /body hash did not verify/)
  })

  it('a header the AMS signed altered after the newest seal: fail', async () => {
    expect(await check(Buffer.from(twoHops.toString('latin1').replace('Subject: ARC test', 'Subject: ARC best'), 'latin1')), { chain: 'fail', sealer: 'list.test' })
  })

  it('wrong instance numbers (i=2 with no i=1): fail', async () => {
    const renumbered = Buffer.from(oneHop.toString('latin1').replace(/^(ARC-[A-Za-z-]+: i=)1;/gm, '$12;'), 'latin1')
    const got = await check(renumbered)
    expect(got, { chain: 'fail', instance: 2, sealer: 'fwd.test' })
    assert.match(got.reason, /i=2 expected=1/)
  })

  it('the two hops with the same instance number twice: fail', async () => {
    const twice = Buffer.from(twoHops.toString('latin1').replace(/^(ARC-[A-Za-z-]+: i=)2;/gm, '$11;'), 'latin1')
    expect(await check(twice), { chain: 'fail' })
  })

  it('a missing ARC-Message-Signature: fail', async () => {
    const got = await check(without(oneHop, 'ARC-Message-Signature'))
    expect(got, { chain: 'fail', sealer: 'fwd.test' })
    assert.match(got.reason, /no arc-message-signature/)
  })

  it('a missing ARC-Seal of the newest hop: fail', async () => {
    const [newest] = twoHops.toString('latin1').match(/^ARC-Seal: i=2;[^]*?\r\n(?=\S)/m) ?? ['']
    expect(await check(Buffer.from(twoHops.toString('latin1').replace(newest, ''), 'latin1')), { chain: 'fail' })
  })

  it('no ARC at all: none (also with a DKIM-Signature), no DNS asked', async () => {
    const client = new TableClient(zone)
    const got = await evaluateArc(message(), 'example.com', new CachingResolver(client, { negativeTtl: 0, maxTtl: 0 }), 2000)
    expect(got, { chain: 'none', sealer: null, instance: 0, authenticated: null, reason: 'arc=none (no ARC headers)' })
    assert.deepEqual(client.queries, [])
    const signed = Buffer.concat([Buffer.from('DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from; bh=x; b=y\r\n'), message()])
    expect(await check(signed), { chain: 'none' })
  })

  it('a seal made with a key other than the one in DNS: fail', async () => {
    const forged = await seal(oneHop, 'list.test', other, DMARC_PASS, 'pass')
    expect(await check(forged), { chain: 'fail', sealer: 'list.test', authenticated: null })
  })

  it('a hop that says cv=fail: fail', async () => {
    expect(await check(await seal(oneHop, 'list.test', list, DMARC_PASS, 'fail')), { chain: 'fail' })
  })

  it("the sealer's key not in DNS: fail, not temporary", async () => {
    expect(await check(oneHop, 'example.com', {}), { chain: 'fail', temporary: false, reason: 'arc=fail i=1 sealer=fwd.test: no key at arc._domainkey.fwd.test' })
  })

  it("the sealer's key lookup fails (SERVFAIL): fail, temporary", async () => {
    const got = await check(oneHop, 'example.com', { 'TXT arc._domainkey.fwd.test': { rcode: 2, answers: [], authorities: [] } })
    expect(got, { chain: 'fail', temporary: true })
    assert.match(got.reason, /\(DNS: TXT lookup rcode 2 SERVFAIL\)$/)
  })

  it('a key lookup that does not answer in time: fail, temporary, within the time', async () => {
    const hanging = { txt: (): Promise<Lookup<string>> => new Promise(() => {}) }
    const t0 = Date.now()
    const got = await evaluateArc(oneHop, 'example.com', hanging, 100)
    expect(got, { chain: 'fail', temporary: true })
    assert.ok(Date.now() - t0 < 1500)
  })

  it('the newest A-R: an aligned DKIM pass, an aligned SPF pass, dmarc=pass for another From', async () => {
    const sealed = (ar: string) => seal(message(), 'fwd.test', fwd, ar, 'none')
    expect(await check(await sealed('dkim=pass header.d=mail.example.com; dmarc=none')), { authenticated: 'dkim=pass header.d=mail.example.com' })
    expect(await check(await sealed('dkim=pass header.i=@example.com')), { authenticated: 'dkim=pass header.d=example.com' })
    expect(await check(await sealed('spf=pass smtp.mailfrom=bounce@bounce.example.com')), { authenticated: 'spf=pass smtp.mailfrom=bounce.example.com' })
    expect(await check(await sealed('dmarc=pass header.from=other.test; dkim=fail header.d=example.com')), { chain: 'pass', authenticated: null })
    expect(await check(await sealed('spf=pass smtp.mailfrom=x@esp.test; dkim=neutral header.d=example.com')), { authenticated: null })
    // Without a From domain, only the sealer's dmarc=pass says anything.
    expect(await check(oneHop, null), { authenticated: 'dmarc=pass' })
    expect(await check(await sealed('dkim=pass header.d=example.com'), null), { authenticated: null })
  })

  it('a chain that fails reports no authentication, whatever its A-R says', async () => {
    const altered = Buffer.from(oneHop.toString('latin1').replace('Hello,', 'Hello!'), 'latin1')
    expect(await check(altered), { chain: 'fail', authenticated: null })
  })

  it('unreadable input is a fail, not a throw', async () => {
    expect(await check(Buffer.from('ARC-Seal: i=1; garbage\r\n\r\n')), { chain: 'fail' })
  })

  it('hasArcHeader looks at the header only', () => {
    assert.equal(hasArcHeader(oneHop), true)
    assert.equal(hasArcHeader(message('ARC-Seal: i=1; in the body\r\n')), false)
    assert.equal(hasArcHeader(Buffer.from('Subject: x\nArc-Authentication-Results: i=1; x\n\nbody')), true)
  })
})
