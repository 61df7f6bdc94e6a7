// The MX6 fallback reply's Authentication-Results lines, including hostile input.
import assert from 'node:assert/strict'
import { authResultsLines, MAX_TOKEN, safeAuthservId } from '../../plugins/lib/authres'
import { MAX_TEXT, replyLines } from '../../plugins/lib/reply'

const HARAKA_JOIN = ';\r\n\t'
const field = (...parts: string[]) => parts.join(HARAKA_JOIN)

/** What a parser sees: the lines unfolded with one space. */
const unfold = (lines: string[]) => lines.join(' ').replace(/^Authentication-Results: /, '')

function assertSafe(lines: string[]): void {
  for (const l of lines) {
    // With "550-5.5.7 " in front and CRLF behind, a line must stay within 512 octets.
    assert.ok(Buffer.byteLength(`550-5.5.7 ${l}\r\n`) <= 512, `line of ${l.length}`)
    assert.match(l, /^[\x20-\x7e]*$/, 'printable ASCII only')
  }
}

describe('authres: authResultsLines', () => {
  it('folds Haraka\'s field into one line per result, the way RFC 8601 reads it', () => {
    const lines = authResultsLines(field('mx.rcpt.test', 'spf=pass smtp.mailfrom=allowed.test', 'dkim=pass header.i=@allowed.test header.d=allowed.test header.s=s1'), 'mx.rcpt.test')
    assert.deepEqual(lines, [
      'Authentication-Results: mx.rcpt.test;',
      ' spf=pass smtp.mailfrom=allowed.test;',
      ' dkim=pass header.i=@allowed.test header.d=allowed.test header.s=s1',
    ])
    assert.equal(unfold(lines), 'mx.rcpt.test;  spf=pass smtp.mailfrom=allowed.test;  dkim=pass header.i=@allowed.test header.d=allowed.test header.s=s1')
  })
  it('says "none" when there are no results, and uses the configured authserv-id', () => {
    assert.deepEqual(authResultsLines('', 'mx6.example.net'), ['Authentication-Results: mx6.example.net; none'])
    assert.deepEqual(authResultsLines(field('haraka.local', 'spf=none smtp.mailfrom=x.test'), 'ar.example.net')[0], 'Authentication-Results: ar.example.net;')
  })

  const hostile: Array<[string, string]> = [
    ['CR/LF injection', 'spf=pass smtp.mailfrom=evil.test\r\n550 5.7.1 injected\r\nX-Fake: 1'],
    ['NUL and controls', 'dkim=fail header.d=a\x00b\x07c.test header.s=s\x1b1'],
    ['8-bit', 'spf=pass smtp.mailfrom=b\u00fccher.test header.from=\u00ff\u00fe'],
    ['2,000-octet domain', `dkim=pass header.d=${'a'.repeat(2000)}.test header.s=s1`],
    ['many long tokens', Array.from({ length: 40 }, (_, i) => `header.x${i}=${'b'.repeat(150)}`).join(' ')],
    ['empty values', ''],
    ['only spaces', '    '],
  ]
  for (const [name, resinfo] of hostile) {
    it(`stays safe with ${name}`, () => {
      const lines = authResultsLines(field('mx.rcpt.test', 'spf=none smtp.mailfrom=x.test', resinfo), 'mx.rcpt.test')
      assertSafe(lines)
      assert.equal(lines[0], 'Authentication-Results: mx.rcpt.test;')
      for (const l of lines.slice(1)) assert.ok(l.startsWith(' '), 'continuation lines fold with a space')
      for (const token of unfold(lines).split(/\s+/)) assert.ok(token.length <= MAX_TOKEN + 1, `token of ${token.length}`)
      assert.doesNotMatch(unfold(lines), /550 5\.7\.1 injected\r|\n/)
    })
  }
  it('cleans a hostile authserv-id into a plain token', () => {
    assert.equal(safeAuthservId('mx;\r\nevil (x) "y"'), 'mxevilxy')
    assert.equal(safeAuthservId('\u00e9\u00e9'), 'localhost')
  })
})

describe('reply: replyLines', () => {
  it('splits long text at spaces into lines of at most MAX_TEXT', () => {
    const text = Array.from({ length: 200 }, (_, i) => `word${i}`).join(' ')
    const lines = replyLines(text)
    assert.ok(lines.length > 1)
    for (const l of lines) assert.ok(l.length <= MAX_TEXT)
    assert.equal(lines.join(' '), text)
  })
  it('never passes control characters, CR/LF or 8-bit', () => {
    assert.deepEqual(replyLines('a\r\n551 b\x00 c\u00e9'), ['a??551 b? c?'])
    assert.deepEqual(replyLines(''), [])
    assert.ok(replyLines('x'.repeat(2000)).every((l) => l.length <= MAX_TEXT))
  })
})
