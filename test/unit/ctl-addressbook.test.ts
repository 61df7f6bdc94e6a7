// Address-book import parsing (CSV, vCard) and member/recipient normalisation, with hostile input.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { decodeText, detectFormat, forEachCsvRecord, isEmailHeader, MAX_SKIPPED_LISTED, parseAddressBook, parseCsv, parseVcard } from '../../scripts/ctl/addressbook'
import { normaliseMember, normaliseRecipient } from '../../scripts/ctl/book-members'
import { summary } from '../../scripts/ctl/book'

describe('ctl addressbook: members and recipients', () => {
  const members: Array<[string, string | RegExp]> = [
    ['alice@example.org', 'alice@example.org'],
    ['Alice@Example.ORG', 'alice@example.org'],
    ['alice+tag@example.org', 'alice+tag@example.org'], // senders keep their sub-address
    ['Alice Example <Alice@example.org>', 'alice@example.org'],
    ['mailto:alice@example.org', 'alice@example.org'],
    ['alice@bücher.example', 'alice@xn--bcher-kva.example'],
    ['alice@example.org.', 'alice@example.org'],
    ['@Example.NET', '@example.net'],
    ['@bücher.example', '@xn--bcher-kva.example'],
    ['@co.uk', /public suffix/],
    ['example.org', /no @.*@example.org/],
    ['@', /not a domain/],
    ['@not a domain', /not a domain/],
    ['alice@', /bad domain/],
    ['@example.org@x', /not a domain/],
    ['alice@localhost', /bad domain/],
    ['al ice@example.org', /not an email address/],
    ['a"b@example.org', /not an email address/],
    ['alice@exa mple.org', /bad domain/],
    ['ali\u0000ce@example.org', /control characters/],
    ['alice\u0007@example.org', /control characters/],
    ['alice\u0085@example.org', /control characters/],
    ['al\ufffdce@example.org', /undecodable/],
    ['', /empty/],
    ['   ', /empty/],
    [`${'a'.repeat(400)}@example.org`, /too long/],
    [`${'a'.repeat(2000)}@example.org`, /too long/],
  ]
  for (const [input, want] of members) {
    it(`member ${JSON.stringify(input.length > 40 ? `${input.slice(0, 20)}...` : input)}`, () => {
      const n = normaliseMember(input)
      if (typeof want === 'string') assert.deepEqual(n, { value: want, changed: want !== input })
      else {
        assert.ok('error' in n, JSON.stringify(n))
        assert.match(n.error, want)
      }
    })
  }

  it('normalises recipients as mx6-receive does: the delimiter drops the sub-address', () => {
    assert.deepEqual(normaliseRecipient('Bob+lists@Example.COM', '+'), { value: 'bob@example.com', changed: true })
    assert.deepEqual(normaliseRecipient('bob@example.com', '+'), { value: 'bob@example.com', changed: false })
    assert.deepEqual(normaliseRecipient('bob-x@example.com', '-'), { value: 'bob@example.com', changed: true })
    assert.deepEqual(normaliseRecipient('bob+x@example.com', ''), { value: 'bob+x@example.com', changed: false })
    assert.deepEqual(normaliseRecipient('+x@example.com', '+'), { value: '+x@example.com', changed: false })
    assert.match((normaliseRecipient('@example.com', '+') as { error: string }).error, /not a domain/)
    assert.ok('error' in normaliseRecipient('bob', '+'))
    assert.ok('error' in normaliseRecipient('bob@exa\u0000mple.com', '+'))
  })
})

describe('ctl addressbook: CSV', function () {
  this.timeout(20000)
  it('recognises e-mail column headers of the common exports', () => {
    for (const h of ['email', 'Email', 'E-mail', 'E-mail Address', 'Primary Email', 'Secondary Email', 'E-mail 2 Address', 'E-mail 1 - Value', 'email_address', 'EMAIL ADDRESS', 'Work Email']) assert.ok(isEmailHeader(h), h)
    for (const h of ['E-mail Type', 'E-mail Display Name', 'Name', 'Phone', 'emailing list', 'Mail']) assert.ok(!isEmailHeader(h), h)
  })

  it('reads the e-mail column of a header row: quoted commas and semicolons, escaped quotes, CRLF, BOM', () => {
    const csv = '\ufeffName,"E-mail Address",Notes\r\n"Doe, John",john@example.org,"likes ""quotes"", commas; and semicolons"\r\n"Smith; Ann",Ann@X.org,\r\nNo Mail,,x\r\n'
    const r = parseAddressBook(csv)
    assert.equal(r.format, 'csv')
    assert.deepEqual(r.addresses, ['john@example.org', 'ann@x.org'])
    assert.deepEqual(r.skipped, [{ line: 4, reason: 'no email address' }])
  })

  it('takes every e-mail column (Outlook: E-mail, E-mail 2, E-mail 3; Google " ::: ")', () => {
    const csv = 'First Name,E-mail Address,E-mail Type,E-mail 2 Address\nA,a@x.org,SMTP,a2@x.org\nB,b1@x.org ::: b2@x.org,SMTP,\n'
    assert.deepEqual(parseCsv(csv).addresses, ['a@x.org', 'a2@x.org', 'b1@x.org', 'b2@x.org'])
  })

  it('handles semicolon- and tab-separated files', () => {
    assert.deepEqual(parseCsv('Name;Email\n"Doe; J";j@x.org\n').addresses, ['j@x.org'])
    assert.deepEqual(parseCsv('Name\tEmail\nDoe\tj@x.org\n').addresses, ['j@x.org'])
  })

  it('reads headerless one-address-per-line files, with LF, CRLF or CR-only line ends', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const r = parseCsv(['a@x.org', 'B@X.org', '', 'junk', '@y.org'].join(eol) + eol)
      assert.deepEqual(r.addresses, ['a@x.org', 'b@x.org', '@y.org'], JSON.stringify(eol))
      assert.deepEqual(r.skipped, [{ line: 4, reason: 'no email address' }], JSON.stringify(eol))
    }
  })

  it('counts lines across quoted multi-line fields', () => {
    const r = parseCsv('Email,Notes\na@x.org,"two\nlines"\nbad@,x\nc@x.org,"three\r\nline\rends"\nworse,\n')
    assert.deepEqual(r.addresses, ['a@x.org', 'c@x.org'])
    assert.deepEqual(r.skipped, [
      { line: 4, reason: 'not an email address (bad domain)' },
      { line: 8, reason: 'not an email address' },
    ])
  })

  it('counts duplicates once', () => {
    const r = parseCsv('a@x.org\nA@X.ORG\nAlice <a@x.org>\nb@x.org\n')
    assert.deepEqual(r.addresses, ['a@x.org', 'b@x.org'])
    assert.equal(r.duplicates, 2)
    assert.equal(r.skippedTotal, 0)
  })

  it('an unterminated quote does not swallow the rest of the file', () => {
    const r = parseCsv('Email,Name\na@x.org,"Broken\nb@x.org,Fine\nc@x.org,Fine\n')
    assert.deepEqual(r.addresses, ['a@x.org', 'b@x.org', 'c@x.org'])
    assert.match(r.notes[0], /line 2: unterminated quote/)
  })

  it('parses records exactly (empty fields, trailing delimiter, text after a closing quote)', () => {
    const got: Array<[string[], number]> = []
    forEachCsvRecord('a,,"b""c"d,\r\n"x\ny",z\n,', ',', (f, l) => got.push([f, l]))
    assert.deepEqual(got, [
      [['a', '', 'b"cd', ''], 1],
      [['x\ny', 'z'], 2],
      [['', ''], 4],
    ])
  })

  it('skips addresses with NULs and control characters, and binary junk, without throwing', () => {
    const r = parseCsv('a\u0000b@x.org\nok@x.org\nc\u001b@x.org\n\u0000\u0000\u0000\n')
    assert.deepEqual(r.addresses, ['ok@x.org'])
    assert.deepEqual(r.skipped, [
      { line: 1, reason: 'control characters' },
      { line: 3, reason: 'control characters' },
      { line: 4, reason: 'no email address' },
    ])
    for (let i = 0; i < 20; i++) {
      const junk = decodeText(randomBytes(200_000))
      const j = parseAddressBook(junk)
      assert.ok(Array.isArray(j.addresses))
      for (const a of j.addresses) assert.deepEqual(normaliseMember(a), { value: a, changed: false })
    }
  })

  it('skips a 10 MB line quickly and keeps going', () => {
    const t0 = Date.now()
    const r = parseCsv(`a@x.org\n${'x'.repeat(10 * 1024 * 1024)}@x.org\n"${'"'.repeat(1000)}\nb@x.org\n`)
    assert.deepEqual(r.addresses, ['a@x.org', 'b@x.org'])
    assert.equal(r.skipped[0].line, 2)
    assert.match(r.skipped[0].reason, /too long/)
    assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`)
  })

  it('reads 100k rows quickly', () => {
    const rows = ['Name,Email']
    for (let i = 0; i < 100_000; i++) rows.push(`"User ${i}, Jr.",user${i}@example.org`)
    const t0 = Date.now()
    const r = parseCsv(rows.join('\r\n'))
    const ms = Date.now() - t0
    assert.equal(r.addresses.length, 100_000)
    assert.equal(r.addresses[99_999], 'user99999@example.org')
    assert.ok(ms < 3000, `${ms} ms`)
  })

  it('keeps the skipped list bounded, counting every reason', () => {
    const r = parseCsv('junk\n'.repeat(MAX_SKIPPED_LISTED * 3))
    assert.equal(r.skippedTotal, MAX_SKIPPED_LISTED * 3)
    assert.equal(r.skipped.length, MAX_SKIPPED_LISTED)
    assert.deepEqual(r.reasons, { 'no email address': MAX_SKIPPED_LISTED * 3 })
    assert.match(summary(r), /^imported 0, skipped 3000 \(no email address: lines 1, 2, 3, 4, 5, \.\.\. \(3000 in all\)\)$/)
  })
})

describe('ctl addressbook: vCard', function () {
  this.timeout(20000)
  it('reads EMAIL lines of 2.1, 3.0 and 4.0 cards, with groups, parameters and folded lines', () => {
    const vcf = [
      'BEGIN:VCARD',
      'VERSION:3.0',
      'FN:Alice',
      'item1.EMAIL;TYPE=INTERNET,pref:Alice@Exam',
      ' ple.org',
      'EMAIL;TYPE="work,internet":alice@work.example',
      'END:VCARD',
      'BEGIN:VCARD',
      'VERSION:2.1',
      'EMAIL;INTERNET;PREF:bob@example.org',
      'EMAIL;INTERNET;ENCODING=QUOTED-PRINTABLE:carol=40exa=',
      'mple.org',
      'END:VCARD',
      'begin:vcard',
      'version:4.0',
      'email;type=work;pref=1:mailto:dave@example.org',
      'EMAIL;VALUE=text:Erin <erin@example.org>',
      'end:vcard',
    ].join('\r\n')
    const r = parseAddressBook(vcf)
    assert.equal(r.format, 'vcard')
    assert.deepEqual(r.addresses, ['alice@example.org', 'alice@work.example', 'bob@example.org', 'carol@example.org', 'dave@example.org', 'erin@example.org'])
    assert.equal(r.skippedTotal, 0)
  })

  it('is detected by content, whatever the extension, with LF or CR-only line ends and a BOM', () => {
    assert.equal(detectFormat('\n\nBEGIN:VCARD\nEMAIL:a@x.org\nEND:VCARD\n'), 'vcard')
    assert.equal(detectFormat('Email\na@x.org\n'), 'csv')
    const r = parseAddressBook('\ufeffBEGIN:VCARD\rVERSION:3.0\rEMAIL:a@x.org\rEND:VCARD\r')
    assert.deepEqual(r.addresses, ['a@x.org'])
  })

  it('reports cards without an address and undecodable values, and skips them', () => {
    const vcf = [
      'BEGIN:VCARD',
      'FN:No Mail',
      'END:VCARD',
      'BEGIN:VCARD',
      'EMAIL;ENCODING=QUOTED-PRINTABLE:bad=ZZ@x.org',
      'EMAIL;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:=C3=28@x.org',
      'EMAIL;ENCODING=b:YUB4Lm9yZw==',
      'EMAIL;ENCODING=x-weird:a@x.org',
      'EMAIL:ctl\\nx@x.org',
      'EMAIL:n\u0000ul@x.org',
      'END:VCARD',
    ].join('\n')
    const r = parseVcard(vcf)
    assert.deepEqual(r.addresses, ['a@x.org'])
    assert.deepEqual(r.skipped, [
      { line: 1, reason: 'card without email address' },
      { line: 5, reason: 'undecodable quoted-printable value' },
      { line: 6, reason: 'undecodable characters' },
      { line: 8, reason: 'unknown encoding X-WEIRD' },
      { line: 9, reason: 'control characters' },
      { line: 10, reason: 'control characters' },
    ])
  })

  it('survives a card that never ends, a 10 MB line and junk between cards', () => {
    const vcf = `BEGIN:VCARD\nEMAIL:a@x.org\n${'Z'.repeat(10 * 1024 * 1024)}\nEMAIL:${'y'.repeat(5000)}@x.org\n\u0000\u0001junk\nBEGIN:VCARD\nEMAIL:b@x.org\n`
    const t0 = Date.now()
    const r = parseVcard(vcf)
    assert.deepEqual(r.addresses, ['a@x.org', 'b@x.org'])
    assert.deepEqual(r.skipped, [{ line: 4, reason: 'too long for an email address' }])
    assert.ok(Date.now() - t0 < 2000)
  })

  it('reads many cards quickly', () => {
    const cards: string[] = []
    for (let i = 0; i < 50_000; i++) cards.push(`BEGIN:VCARD\r\nVERSION:3.0\r\nFN:U ${i}\r\nEMAIL;TYPE=INTERNET:u${i}@example.org\r\nEND:VCARD`)
    const t0 = Date.now()
    const r = parseVcard(cards.join('\r\n'))
    assert.equal(r.addresses.length, 50_000)
    assert.ok(Date.now() - t0 < 3000)
  })
})

describe('ctl addressbook: decoding', () => {
  it('honours UTF-8 and UTF-16 byte-order marks', () => {
    const text = 'Email\r\nbücher@example.org\r\n'
    assert.equal(decodeText(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), text)
    assert.equal(decodeText(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')])), text)
    assert.equal(decodeText(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()])), text)
    assert.deepEqual(parseAddressBook(decodeText(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]))).addresses, ['bücher@example.org'])
  })
  it('turns invalid UTF-8 into skipped addresses, not crashes', () => {
    const r = parseAddressBook(decodeText(Buffer.from([0x61, 0xff, 0x40, 0x78, 0x2e, 0x6f, 0x72, 0x67, 0x0a, 0x62, 0x40, 0x78, 0x2e, 0x6f, 0x72, 0x67])))
    assert.deepEqual(r.addresses, ['b@x.org'])
    assert.deepEqual(r.skipped, [{ line: 1, reason: 'undecodable characters' }])
  })
})
