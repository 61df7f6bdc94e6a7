// mx6ctl book add|rm|ls|import against a private, real redis-server, with files in a temp dir.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { ctl, useCtlRedis } from '../support/ctl'
import { tempDir } from '../support/proc'
import { RedisServer } from '../support/redis'

async function calls(server: RedisServer, cmd: string): Promise<number> {
  const m = new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(await server.cli('INFO', 'commandstats'))
  return m ? Number(m[1]) : 0
}

async function members(server: RedisServer, key: string): Promise<string[]> {
  const out = await server.cli('SMEMBERS', key)
  return out === '' ? [] : out.split('\n').sort()
}

describe('functional: mx6ctl book', function () {
  this.timeout(60000)
  const redis = useCtlRedis()
  let server: RedisServer
  let dir: string
  const file = (name: string, content: string | Buffer): string => {
    const f = path.join(dir, name)
    fs.writeFileSync(f, content)
    return f
  }

  before(async () => {
    server = redis.server
    dir = tempDir('ctl-book')
  })
  beforeEach(() => server.cli('FLUSHALL'))

  it('add normalises the recipient as mx6-receive does and the senders, ls lists, rm removes', async () => {
    const add = await ctl('book', 'add', 'Bob+lists@Example.COM', 'Alice@Example.ORG', '@Bücher.example', 'carol+news@example.net')
    assert.equal(add.code, 0, add.err)
    assert.match(add.out, /recipient "Bob\+lists@Example.COM" normalised to bob@example.com/)
    assert.match(add.out, /"Alice@Example.ORG" normalised to alice@example.org/)
    assert.match(add.out, /mx6:book:bob@example.com: 3 members$/)
    assert.deepEqual(await members(server, 'mx6:book:bob@example.com'), ['@xn--bcher-kva.example', 'alice@example.org', 'carol+news@example.net'])

    const again = await ctl('book', 'add', 'bob@example.com', 'alice@example.org')
    assert.equal(again.code, 0)
    assert.match(again.out, /alice@example.org is already in the book of bob@example.com/)

    const ls = await ctl('book', 'ls', 'bob@example.com')
    assert.equal(ls.out, ['mx6:book:bob@example.com: 3 members', '  carol+news@example.net', '  alice@example.org', '  @xn--bcher-kva.example'].join('\n'))
    const json = JSON.parse((await ctl('book', 'ls', 'BOB+x@example.com', '--json')).out)
    assert.deepEqual(json, { recipient: 'bob@example.com', key: 'mx6:book:bob@example.com', members: ['carol+news@example.net', 'alice@example.org', '@xn--bcher-kva.example'] })

    const rm = await ctl('book', 'rm', 'bob@example.com', 'ALICE@example.org')
    assert.equal(rm.code, 0, rm.err)
    assert.match(rm.out, /removed alice@example.org from the book of bob@example.com/)
    const missing = await ctl('book', 'rm', 'bob@example.com', 'alice@example.org')
    assert.equal(missing.code, 1)
    assert.match(missing.err, /^mx6ctl book: alice@example.org is not in the book of bob@example.com$/)
    assert.deepEqual(await members(server, 'mx6:book:bob@example.com'), ['@xn--bcher-kva.example', 'carol+news@example.net'])
    const empty = await ctl('book', 'ls', 'nobody@example.com')
    assert.equal(empty.out, 'the book of nobody@example.com is empty (mx6:book:nobody@example.com)')
  })

  it('refuses invalid senders and recipients with exit 2 and writes nothing', async () => {
    for (const argv of [
      ['book', 'add', 'bob@example.com', 'example.org'],
      ['book', 'add', 'bob@example.com', 'ok@example.org', 'bad address@example.org'],
      ['book', 'add', 'bob@example.com', '@co.uk'],
      ['book', 'add', 'not-a-mailbox', 'ok@example.org'],
      ['book', 'add', '@example.com', 'ok@example.org'],
    ]) {
      const r = await ctl(...argv)
      assert.equal(r.code, 2, argv.join(' '))
      assert.equal(r.err.split('\n').length, 1, r.err)
      assert.ok(r.err.endsWith('; see `mx6ctl book --help`'), r.err)
    }
    assert.equal((await ctl('book', 'add', 'bob@example.com')).code, 2)
    assert.equal((await ctl('book', 'list', 'bob@example.com')).code, 2)
    assert.equal(await server.cli('DBSIZE'), '0')
  })

  it('imports a CSV export (header, quotes, CRLF, BOM) in one SADD and prints the counts', async () => {
    const csv = file(
      'contacts.csv',
      '\ufeffFirst Name,Last Name,"E-mail Address",E-mail Type,E-mail 2 Address\r\n' +
        'John,"Doe, Jr.",john@example.org,SMTP,\r\n' +
        'Ann,"Smith; PhD",Ann@X.example,SMTP,ann.alt@x.example\r\n' +
        'No,Mail,,,\r\n' +
        'Bad,Entry,"not an address",SMTP,\r\n' +
        'Dup,Licate,JOHN@example.org,SMTP,\r\n',
    )
    await server.cli('SADD', 'mx6:book:bob@example.com', 'ann@x.example')
    await server.cli('CONFIG', 'RESETSTAT')
    const r = await ctl('book', 'import', 'Bob@Example.com', csv)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^imported 3, skipped 2 \(no email address: line 4; not an email address: line 5\); 1 duplicate counted once$/m)
    assert.match(r.out, /^mx6:book:bob@example.com: 2 new, 3 members in all$/m)
    assert.deepEqual(await members(server, 'mx6:book:bob@example.com'), ['ann.alt@x.example', 'ann@x.example', 'john@example.org'])
    assert.equal(await calls(server, 'sadd'), 1)
  })

  it('imports a headerless list, one address per line, CR-only line ends', async () => {
    const f = file('list.txt', 'a@example.org\r@example.net\rjunk\rB@EXAMPLE.org\r')
    const r = await ctl('book', 'import', 'bob@example.com', f)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^imported 3, skipped 1 \(no email address: line 3\)$/m)
    assert.deepEqual(await members(server, 'mx6:book:bob@example.com'), ['@example.net', 'a@example.org', 'b@example.org'])
  })

  it('imports vCard 2.1/3.0/4.0, detected by content even with a .csv name', async () => {
    const vcf = [
      'BEGIN:VCARD',
      'VERSION:3.0',
      'FN:Alice',
      'item1.EMAIL;TYPE=INTERNET,pref:alice@exam',
      ' ple.org',
      'END:VCARD',
      'BEGIN:VCARD',
      'VERSION:2.1',
      'EMAIL;INTERNET;ENCODING=QUOTED-PRINTABLE:carol=40example.org',
      'EMAIL;INTERNET;ENCODING=QUOTED-PRINTABLE:broken=ZZ',
      'END:VCARD',
      'BEGIN:VCARD',
      'VERSION:4.0',
      'FN:No Address',
      'END:VCARD',
      'BEGIN:VCARD',
      'VERSION:4.0',
      'EMAIL;TYPE=work:mailto:Dave@Example.org',
      'END:VCARD',
      '',
    ].join('\r\n')
    for (const name of ['cards.vcf', 'cards.csv']) {
      await server.cli('DEL', 'mx6:book:bob@example.com')
      const r = await ctl('book', 'import', 'bob@example.com', file(name, vcf))
      assert.equal(r.code, 0, r.err)
      assert.match(r.out, /^imported 3, skipped 2 \(/m, name)
      assert.match(r.out, /undecodable quoted-printable value: line 10/)
      assert.match(r.out, /card without email address: line 12/)
      assert.deepEqual(await members(server, 'mx6:book:bob@example.com'), ['alice@example.org', 'carol@example.org', 'dave@example.org'])
    }
  })

  it('100k rows: one SADD, all imported', async () => {
    const rows = ['Name,Email']
    for (let i = 0; i < 100_000; i++) rows.push(`"User ${i}, Jr.",user${i}@example.org`)
    const f = file('big.csv', rows.join('\n'))
    await server.cli('CONFIG', 'RESETSTAT')
    const t0 = Date.now()
    const r = await ctl('book', 'import', 'bob@example.com', f)
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^imported 100000, skipped 0$/m)
    assert.equal(await server.cli('SCARD', 'mx6:book:bob@example.com'), '100000')
    assert.equal(await calls(server, 'sadd'), 1)
    assert.ok(Date.now() - t0 < 20000, `${Date.now() - t0} ms`)
  })

  it('hostile files never crash: binary junk, NULs, a 10 MB line; nothing to import is exit 1 without a write', async () => {
    const junk = file('junk.bin', randomBytes(2 * 1024 * 1024))
    const r = await ctl('book', 'import', 'bob@example.com', junk)
    assert.ok(r.code === 0 || r.code === 1, `${r.code} ${r.err}`)
    assert.match(r.out, /^imported \d+, skipped \d+/m)

    await server.cli('FLUSHALL')
    const nothing = file('nothing.csv', `Email\n\u0000\u0000@\u0000\n${'x'.repeat(10 * 1024 * 1024)}\nctl\u001b[2J@example.org\n`)
    const n = await ctl('book', 'import', 'bob@example.com', nothing)
    assert.equal(n.code, 1)
    assert.match(n.out, /^imported 0, skipped 3 \(/m)
    assert.match(n.err, /no address to import/)
    assert.equal(await server.cli('DBSIZE'), '0')
  })

  it('refuses files over the size cap, missing files and directories with one clear line and exit 2', async () => {
    const huge = path.join(dir, 'huge.csv')
    fs.writeFileSync(huge, 'a@example.org\n')
    fs.truncateSync(huge, 51 * 1024 * 1024)
    const see = '; see `mx6ctl book --help`'
    const big = await ctl('book', 'import', 'bob@example.com', huge)
    assert.equal(big.code, 2)
    assert.equal(big.err, `mx6ctl book: cannot read ${huge}: too large (51.0 MB; the limit is 50 MB)${see}`)
    const nope = path.join(dir, 'nope.csv')
    const missing = await ctl('book', 'import', 'bob@example.com', nope)
    assert.equal(missing.code, 2)
    assert.equal(missing.err, `mx6ctl book: cannot read ${nope}: no such file or directory${see}`)
    assert.equal(missing.out, '')
    const under = await ctl('book', 'import', 'bob@example.com', path.join(huge, 'x.csv'))
    assert.equal(under.code, 2)
    assert.equal(under.err, `mx6ctl book: cannot read ${path.join(huge, 'x.csv')}: a part of the path is not a directory${see}`)
    const d = await ctl('book', 'import', 'bob@example.com', dir)
    assert.equal(d.code, 2)
    assert.equal(d.err, `mx6ctl book: cannot read ${dir}: not a regular file${see}`)
    assert.equal(await server.cli('DBSIZE'), '0')
  })

  it('uses recipient_delimiter from --config mx6-receive.ini', async () => {
    const haraka = path.join(dir, 'haraka')
    fs.mkdirSync(path.join(haraka, 'config'), { recursive: true })
    fs.writeFileSync(path.join(haraka, 'config', 'mx6-receive.ini'), '[main]\nrecipient_delimiter=-\n')
    const r = await ctl('--config', haraka, 'book', 'add', 'bob-lists@example.com', 'alice@example.org')
    assert.equal(r.code, 0, r.err)
    assert.deepEqual(await members(server, 'mx6:book:bob@example.com'), ['alice@example.org'])
    const plus = await ctl('--config', haraka, 'book', 'add', 'bob+lists@example.com', 'alice@example.org')
    assert.equal(plus.code, 0, plus.err)
    assert.equal(await server.cli('EXISTS', 'mx6:book:bob+lists@example.com'), '1')
  })
})
