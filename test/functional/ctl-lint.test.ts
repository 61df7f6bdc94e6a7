// mx6ctl lint [--fix] against a private, real redis-server seeded with hand-typed mistakes.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { ctl, useCtlRedis } from '../support/ctl'
import { tempDir } from '../support/proc'
import { RedisServer } from '../support/redis'

describe('functional: mx6ctl lint', function () {
  this.timeout(30000)
  const redis = useCtlRedis()
  let server: RedisServer
  const sorted = async (...args: string[]): Promise<string[]> => {
    const out = await server.cli(...args)
    return out === '' ? [] : out.split('\n').sort()
  }
  const hash = async (key: string): Promise<Record<string, string>> => {
    const flat = (await server.cli('HGETALL', key)).split('\n')
    const out: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1]
    return out
  }

  before(async () => {
    server = redis.server
  })
  beforeEach(() => server.cli('FLUSHALL'))

  async function seed(): Promise<void> {
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:1::/48', 'fine', '2001:DB8:55::/48', 'upper case', '2001:db8:2::25/128', 'slash 128', '2001:db8:56::1/48', 'host bits', 'garbage!', 'junk')
    await server.cli('HSET', 'mx6:ip:green', '2001:db8:7::/48', 'kept note', '2001:DB8:7::/48', 'dropped note')
    await server.cli('HSET', 'mx6:domain:allow', 'Partner.TEST.', 'p', 'ok.test', 'fine', 'bad domain', 'x')
    await server.cli('HSET', 'mx6:domain:green', 'bücher.example', 'u-label')
    await server.cli('SET', 'mx6:host:green', 'a string')
    await server.cli('HSET', 'mx6:asn:green', 'AS64501', 'a', '64500', 'fine', 'foo', 'b')
    await server.cli('SADD', 'mx6:book:Carol+x@Example.com', 'Friend@Other.TEST', '@Other.test', 'garbage')
    await server.cli('SADD', 'mx6:book:carol@example.com', 'existing@x.test')
    await server.cli('SADD', 'mx6:book:dan@example.com', 'Eve@X.test', 'ok@x.test')
    await server.cli('SADD', 'mx6:book:notamailbox', 'a@b.test')
    await server.cli('SET', 'mx6:book:str@example.com', 'x')
    await server.cli('HSET', 'mx6:book:hash@example.com', 'a', 'b')
  }

  it('is clean (exit 0) on an empty and on a canonical database', async () => {
    const empty = await ctl('lint')
    assert.equal(empty.code, 0, empty.out)
    assert.match(empty.out, /no problems/)
    await ctl('allow', 'ip', 'add', '2001:db8::/32', 'x')
    await ctl('book', 'add', 'bob@example.com', 'alice@example.org', '@example.net')
    const clean = await ctl('lint')
    assert.equal(clean.code, 0, clean.out)
    assert.equal(clean.out, 'lint: 2 keys and 3 entries checked: no problems')
  })

  it('reports each problem kind on one line, with the fix, and exit 1; writes nothing', async () => {
    await seed()
    const before = await server.cli('DEBUG', 'DIGEST')
    const r = await ctl('lint')
    assert.equal(r.code, 1)
    const lines = r.out.split('\n')
    const has = (re: RegExp): void => assert.ok(lines.some((l) => re.test(l)), `no line matching ${re}\n${r.out}`)
    has(/^mx6:ip:allow: "2001:DB8:55::\/48": not in canonical form .*; fix: 2001:db8:55::\/48$/)
    has(/^mx6:ip:allow: "2001:db8:2::25\/128": a single address is written without \/128; fix: 2001:db8:2::25$/)
    has(/^mx6:ip:allow: "2001:db8:56::1\/48": host bits set .*did you mean 2001:db8:56::\/48\? Not fixed automatically/)
    has(/^mx6:ip:allow: "garbage!": not an IPv6 address or CIDR; cannot be fixed/)
    has(/^mx6:domain:allow: "Partner.TEST.": not in canonical form \(trailing dot, upper case\); fix: partner.test$/)
    has(/^mx6:domain:allow: "bad domain": not a valid domain name.*cannot be fixed/)
    has(/^mx6:domain:green: "bücher.example": .*U-label.*; fix: xn--bcher-kva.example$/)
    has(/^mx6:host:green: wrong type: a string, not a hash/)
    has(/^mx6:asn:green: "AS64501": .*; fix: 64501$/)
    has(/^mx6:asn:green: "foo": not an AS number/)
    has(/^mx6:book:Carol\+x@Example.com: member "Friend@Other.TEST": not normalised; fix: friend@other.test$/)
    has(/^mx6:book:Carol\+x@Example.com: member "garbage": not an email address/)
    has(/^mx6:book:Carol\+x@Example.com: recipient not normalised \(mx6-receive looks up mx6:book:carol@example.com\); fix: merge its 2 valid members/)
    has(/^mx6:book:dan@example.com: member "Eve@X.test": not normalised; fix: eve@x.test$/)
    has(/^mx6:book:notamailbox: the recipient "notamailbox" is not a valid recipient/)
    has(/^mx6:book:str@example.com: wrong type: a string, not a set/)
    has(/^mx6:book:hash@example.com: wrong type: a hash, not a set/)
    assert.match(lines[lines.length - 1], /^lint: 12 keys and 21 entries checked: 19 problems \(10 fixable, 6 not fixable automatically, 3 keys of the wrong type\); mx6ctl lint --fix rewrites the fixable ones$/)
    assert.equal(await server.cli('DEBUG', 'DIGEST'), before, 'lint without --fix wrote something')
  })

  it('--fix rewrites the fixable entries keeping notes, merges books, leaves the rest; then only the unfixable remain', async () => {
    await seed()
    const r = await ctl('lint', '--fix')
    assert.equal(r.code, 1, r.out)
    assert.match(r.out, /fixed 10, 9 left for you$/)
    assert.deepEqual(await hash('mx6:ip:allow'), {
      '2001:db8:1::/48': 'fine',
      '2001:db8:55::/48': 'upper case',
      '2001:db8:2::25': 'slash 128',
      '2001:db8:56::1/48': 'host bits',
      'garbage!': 'junk',
    })
    assert.deepEqual(await hash('mx6:ip:green'), { '2001:db8:7::/48': 'kept note' })
    assert.match(r.out, /"2001:DB8:7::\/48": .*fixed: 2001:db8:7::\/48 \(already there: its note kept, "dropped note" dropped\)/)
    assert.deepEqual(await hash('mx6:domain:allow'), { 'partner.test': 'p', 'ok.test': 'fine', 'bad domain': 'x' })
    assert.deepEqual(await hash('mx6:domain:green'), { 'xn--bcher-kva.example': 'u-label' })
    assert.deepEqual(await hash('mx6:asn:green'), { '64501': 'a', '64500': 'fine', foo: 'b' })
    assert.deepEqual(await sorted('SMEMBERS', 'mx6:book:carol@example.com'), ['@other.test', 'existing@x.test', 'friend@other.test'])
    assert.deepEqual(await sorted('SMEMBERS', 'mx6:book:Carol+x@Example.com'), ['garbage'])
    assert.deepEqual(await sorted('SMEMBERS', 'mx6:book:dan@example.com'), ['eve@x.test', 'ok@x.test'])
    // Wrong-type keys are never deleted.
    assert.equal(await server.cli('GET', 'mx6:host:green'), 'a string')
    assert.equal(await server.cli('GET', 'mx6:book:str@example.com'), 'x')
    assert.equal(await server.cli('TYPE', 'mx6:book:hash@example.com'), 'hash')

    const again = await ctl('lint')
    assert.equal(again.code, 1)
    assert.match(again.out, /\(0 fixable, 6 not fixable automatically, 3 keys of the wrong type\)$/)
    assert.doesNotMatch(again.out, /; fix: /)

    // The operator clears what needs a decision; then lint is clean.
    assert.equal((await ctl('allow', 'ip', 'rm', 'garbage!')).code, 0)
    assert.equal((await ctl('allow', 'ip', 'rm', '2001:db8:56::1/48')).code, 0)
    assert.equal((await ctl('allow', 'domain', 'rm', 'bad domain')).code, 0)
    assert.equal((await ctl('green', 'asn', 'rm', 'foo')).code, 0)
    await server.cli('DEL', 'mx6:host:green', 'mx6:book:str@example.com', 'mx6:book:hash@example.com', 'mx6:book:notamailbox', 'mx6:book:Carol+x@Example.com')
    const clean = await ctl('lint', '--fix')
    assert.equal(clean.code, 0, clean.out)
    assert.match(clean.out, /no problems$/)
  })

  it('--json: the same findings and exit status as one JSON object, before and after --fix', async () => {
    const clean = await ctl('lint', '--json')
    assert.equal(clean.code, 0, clean.out)
    assert.deepEqual(JSON.parse(clean.out), { ok: true, fix: false, keys: 0, entries: 0, fixable: 0, fixed: 0, unfixable: 0, wrongType: 0, left: 0, problems: [] })

    await seed()
    const before = await server.cli('DEBUG', 'DIGEST')
    const r = await ctl('lint', '--json')
    assert.equal(r.code, 1)
    assert.equal(r.err, '')
    const j = JSON.parse(r.out)
    // The counts of the text report's last line (see above).
    assert.deepEqual({ ...j, problems: j.problems.length }, { ok: false, fix: false, keys: 12, entries: 21, fixable: 10, fixed: 0, unfixable: 6, wrongType: 3, left: 19, problems: 19 })
    const find = (key: string, entry: string | null) => j.problems.find((p: { key: string; entry: string | null }) => p.key === key && p.entry === entry)
    assert.deepEqual(find('mx6:ip:allow', '2001:DB8:55::/48'), { key: 'mx6:ip:allow', entry: '2001:DB8:55::/48', status: 'fixable', problem: 'not in canonical form (RFC 5952, lower case)', fix: '2001:db8:55::/48', fixed: false })
    assert.deepEqual(find('mx6:ip:allow', '2001:db8:56::1/48'), { key: 'mx6:ip:allow', entry: '2001:db8:56::1/48', status: 'needs-decision', problem: 'host bits set below the prefix length', fix: '2001:db8:56::/48', fixed: false })
    assert.equal(find('mx6:ip:allow', 'garbage!').status, 'invalid')
    assert.equal(find('mx6:host:green', null).status, 'wrong-type')
    assert.equal(find('mx6:book:Carol+x@Example.com', null).fix, 'merge its 2 valid members into mx6:book:carol@example.com')
    assert.equal(await server.cli('DEBUG', 'DIGEST'), before, 'lint --json without --fix wrote something')

    const fixed = await ctl('lint', '--fix', '--json')
    assert.equal(fixed.code, 1)
    const f = JSON.parse(fixed.out)
    assert.equal(f.fix, true)
    assert.equal(f.fixed, 10)
    assert.equal(f.left, 9)
    // Every fix appears once, the members merged with their book too.
    assert.equal(f.problems.filter((p: { fixed: boolean }) => p.fixed).length, 10)
    assert.ok(f.problems.some((p: { entry: string; fixed: boolean }) => p.entry === 'Friend@Other.TEST' && p.fixed))
    assert.deepEqual(await sorted('SMEMBERS', 'mx6:book:carol@example.com'), ['@other.test', 'existing@x.test', 'friend@other.test'])
  })

  it('scans books under a prefix with glob characters, and only those', async () => {
    const haraka = tempDir('ctl-lint')
    fs.mkdirSync(path.join(haraka, 'config'))
    fs.writeFileSync(path.join(haraka, 'config', 'mx6-receive.ini'), '[redis]\nprefix=t*1:\n')
    await server.cli('SADD', 't*1:book:Bob@example.com', 'a@x.test')
    await server.cli('SADD', 'tX1:book:Bob@example.com', 'a@x.test')
    const r = await ctl('--config', haraka, 'lint')
    assert.equal(r.code, 1)
    assert.match(r.out, /^t\*1:book:Bob@example.com: recipient not normalised/m)
    assert.doesNotMatch(r.out, /tX1/)
    assert.match(r.out, /^lint: 1 key and 1 entry checked/m)
  })
})
