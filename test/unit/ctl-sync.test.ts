// mx6ctl sync without Redis: lines of a provider file, their linting with line numbers,
// comments, duplicates, the --max-rejected budget, and the figures line.
import assert from 'node:assert/strict'
import { Keys } from '../../plugins/lib/keys'
import { UsageError } from '../../scripts/ctl/command'
import { SOURCE_NAME, sourceTag, taggedSource } from '../../scripts/ctl/source-tag'
import { registryField } from '../../scripts/ctl/sync-admin'
import { figuresLine, lineBatches, lineText, lintEntry, maxRejected, MAX_LINE, ReadTally, target, withinRejected, type Figures, type LintOptions } from '../../scripts/ctl/sync-lines'

const ip: LintOptions = { list: 'allow', kind: 'ip', force: false, skipPrivate: true }
const domain: LintOptions = { list: 'green', kind: 'domain', force: false, skipPrivate: true }

async function* from(chunks: string[]): AsyncGenerator<string> {
  for (const c of chunks) yield c
}

async function collect(chunks: string[]): Promise<string[]> {
  const out: string[] = []
  for await (const b of lineBatches(from(chunks))) out.push(...b)
  return out
}

function read(text: string, o: LintOptions): { tally: ReadTally; entries: string[] } {
  const tally = new ReadTally()
  const entries: string[] = []
  for (const l of text.split('\n')) {
    const e = tally.feed(l, o)
    if (e !== null) entries.push(e)
  }
  return { tally, entries }
}

describe('ctl sync: the text of a line', () => {
  const cases: Array<[string, string | null]> = [
    ['2001:db8::/32', '2001:db8::/32'],
    ['  2001:db8::/32  ', '2001:db8::/32'],
    ['2001:db8::/32 # partner', '2001:db8::/32'],
    ['2001:db8::/32\t; partner', '2001:db8::/32'],
    ['# comment', null],
    ['; comment', null],
    ['   # indented comment', null],
    ['', null],
    ['   ', null],
    // A # not after white space is part of the entry (then rejected by the lint).
    ['example.org#x', 'example.org#x'],
  ]
  for (const [line, want] of cases) it(`${JSON.stringify(line)} -> ${JSON.stringify(want)}`, () => assert.equal(lineText(line), want))
})

describe('ctl sync: lines from chunks', () => {
  it('splits across chunk borders, drops CR of CRLF and a leading BOM, keeps a last line without newline', async () => {
    assert.deepEqual(await collect(['\ufeffa\r\nb', 'c\nd', '\n', 'e']), ['a', 'bc', 'd', 'e'])
  })
  it('keeps empty lines (they count for line numbers)', async () => {
    assert.deepEqual(await collect(['a\n\n\nb\n']), ['a', '', '', 'b'])
  })
  it('never accumulates a line past MAX_LINE: it comes out too long, the next line is intact', async () => {
    const long = 'y'.repeat(MAX_LINE * 3)
    const got = await collect([long.slice(0, MAX_LINE), long.slice(MAX_LINE), '\nnext\n'])
    assert.equal(got.length, 2)
    assert.ok(got[0].length > MAX_LINE)
    assert.equal(got[1], 'next')
  })
})

describe('ctl sync: linting entries like add', () => {
  it('canonical forms', () => {
    assert.deepEqual(lintEntry('2001:DB8:1:0::/48', ip), { entry: '2001:db8:1::/48' })
    assert.deepEqual(lintEntry('2001:db8::25/128', ip), { entry: '2001:db8::25' })
    assert.deepEqual(lintEntry('Example.ORG.', domain), { entry: 'example.org' })
  })
  it('refusals with their reasons', () => {
    const err = (t: string, o: LintOptions) => {
      const c = lintEntry(t, o)
      assert.ok('error' in c, `${t} accepted`)
      return c.error
    }
    assert.match(err('192.0.2.1', ip), /not an IPv6 address \(IPv4 peers are never filtered\)/)
    assert.match(err('2001:db8::1/48', ip), /host bits set below the prefix length; did you mean 2001:db8::\/48\?/)
    assert.match(err('2000::/8', ip), /more than a \/16 .*add --force/)
    assert.match(err('*.example.org', domain), /no wildcards/)
    assert.match(err('co.uk', domain), /public suffix/)
  })
  it('--force takes a wide range', () => {
    assert.deepEqual(lintEntry('2000::/8', { ...ip, force: true }), { entry: '2000::/8' })
  })
  it('private-only IP entries are accepted with a note (only when skip_private is on)', () => {
    assert.deepEqual(lintEntry('fd00:1::/32', ip), { entry: 'fd00:1::/32', private: 'unique local (fc00::/7)' })
    assert.deepEqual(lintEntry('fe80::1', ip), { entry: 'fe80::1', private: 'link-local (fe80::/10)' })
    assert.deepEqual(lintEntry('fd00:1::/32', { ...ip, skipPrivate: false }), { entry: 'fd00:1::/32' })
    assert.deepEqual(lintEntry('2001:db8::/32', ip), { entry: '2001:db8::/32' })
  })
  it('a global address is private only when it is one of this host`s own', () => {
    assert.deepEqual(lintEntry('2001:db8::99', { ...ip, hostAddresses: new Set(['2001:db8::99']) }), { entry: '2001:db8::99', private: 'an address of this host' })
    assert.deepEqual(lintEntry('2001:db8::98', { ...ip, hostAddresses: new Set(['2001:db8::99']) }), { entry: '2001:db8::98' })
  })
})

describe('ctl sync: reading a file', () => {
  const file = ['# provider list', '2001:db8:1::/48', '', '2001:DB8:2::/48 ; spelt otherwise', 'garbage', '2001:db8:1::/48', '10.0.0.0/8', 'fd00:5::/32', '2001:db8::1/32'].join('\n')
  it('counts lines, entries, rewritten, private; rejected lines carry their line numbers', () => {
    const { tally, entries } = read(file, ip)
    assert.equal(tally.lines, 9)
    assert.deepEqual(entries, ['2001:db8:1::/48', '2001:db8:2::/48', '2001:db8:1::/48', 'fd00:5::/32'])
    assert.equal(tally.entries, 4)
    assert.equal(tally.rewritten, 1)
    assert.equal(tally.private, 1)
    assert.equal(tally.rejectedCount, 3)
    assert.deepEqual(
      tally.rejected.map((r) => r.line),
      [5, 7, 9],
    )
    const report = tally.report('list.txt')
    assert.equal(report.length, 3)
    assert.match(report[0], /^list\.txt:5: "garbage": not an IPv6 address or CIDR$/)
    assert.match(report[2], /^list\.txt:9: .*did you mean 2001:db8::\/32\?$/)
  })
  it('duplicates are entries too (Redis counts the distinct ones)', () => {
    const { entries } = read('example.org\nEXAMPLE.org\nexample.org.\n', domain)
    assert.deepEqual(entries, ['example.org', 'example.org', 'example.org'])
  })
  it('shows the first 20 rejected lines, then how many more', () => {
    const { tally } = read(Array.from({ length: 25 }, (_, i) => `bad${i}`).join('\n'), ip)
    const report = tally.report('-')
    assert.equal(tally.rejectedCount, 25)
    assert.equal(report.length, 21)
    assert.match(report[19], /^-:20: "bad19"/)
    assert.equal(report[20], '… and 5 more')
  })
  it('a line too long is rejected with its number', () => {
    const { tally } = read(`2001:db8::/32\n${'x'.repeat(MAX_LINE + 1)}\n`, ip)
    assert.deepEqual(tally.rejected, [{ line: 2, reason: `line longer than ${MAX_LINE} characters` }])
  })
})

describe('ctl sync: the rejected budget, arguments, tags', () => {
  it('strict by default; --max-rejected N tolerates up to N', () => {
    assert.equal(withinRejected(0, 0), true)
    assert.equal(withinRejected(1, 0), false)
    assert.equal(withinRejected(3, 3), true)
    assert.equal(withinRejected(4, 3), false)
    assert.equal(maxRejected(undefined), 0)
    assert.equal(maxRejected('7'), 7)
    for (const bad of ['-1', '1.5', 'x', '']) assert.throws(() => maxRejected(bad), UsageError)
  })
  it('list, kind and source name', () => {
    assert.deepEqual(target(['green', 'domain', 'dwl.example-1']), { list: 'green', kind: 'domain', source: 'dwl.example-1' })
    for (const bad of [[], ['arc', 'ip', 'x'], ['allow', 'host', 'x'], ['allow', 'ip'], ['allow', 'ip', 'Upper'], ['allow', 'ip', '{x}'], ['allow', 'ip', 'a'.repeat(33)], ['allow', 'ip', '-x']]) {
      assert.throws(() => target(bad), UsageError, JSON.stringify(bad))
    }
    assert.ok(SOURCE_NAME.test('a'.repeat(32)))
  })
  it('the tag, and which notes carry one', () => {
    assert.equal(sourceTag('spamhaus'), 'source:spamhaus')
    assert.equal(taggedSource('source:spamhaus'), 'spamhaus')
    assert.equal(taggedSource('source:spamhaus synced nightly'), 'spamhaus')
    assert.equal(taggedSource('source:spamhausx'), 'spamhausx')
    assert.equal(taggedSource('partner'), null)
    assert.equal(taggedSource('my source:spamhaus'), null)
  })
  it('source keys share the list key`s Cluster slot and stay under the prefix', () => {
    const k = new Keys('mx6:')
    assert.equal(k.source(k.ipAllow, 'dwl'), 'mx6:src:{mx6:ip:allow}:dwl')
    assert.equal(k.sourceStage(k.ipAllow, 'dwl', 'ab12'), 'mx6:stage:{mx6:ip:allow}:dwl:ab12')
    assert.equal(k.sources, 'mx6:sources')
  })
  it('registry fields', () => {
    assert.deepEqual(registryField('allow:ip:dwl'), { list: 'allow', kind: 'ip', source: 'dwl' })
    assert.equal(registryField('arc:domain:x'), null)
    assert.equal(registryField('allow:ip:Bad'), null)
  })
})

describe('ctl sync: the figures line', () => {
  const f: Figures = { list: 'allow', kind: 'ip', source: 'dwl', added: 1234, removed: 5, kept: 1000000, ownedElsewhere: 2, withheld: 1, rejected: 3, duplicates: 4, lines: 1001234, entries: 1001245, rewritten: 0, private: 0, owned: 1001235, seconds: 9.87, scriptSeconds: 0.5, dryRun: false }
  it('names every figure, thousands separated', () => {
    assert.equal(figuresLine(f), 'sync allow ip dwl: added 1,234, removed 5, kept 1,000,000, owned elsewhere 2, withheld 1, rejected 3, duplicates 4 (1,001,234 lines, 9.9 s)')
  })
  it('says when nothing changed', () => {
    assert.match(figuresLine({ ...f, dryRun: true }), /^sync allow ip dwl \(dry run: nothing changed\): added 1,234,/)
  })
})
