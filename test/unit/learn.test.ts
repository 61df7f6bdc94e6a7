// mx6-learn's pure lessons and settings.
import assert from 'node:assert/strict'
import { normaliseMailbox } from '../../plugins/lib/mailbox'
import { readLearnConfig } from '../../plugins/mx6-learn/config'
import { bookLesson, dmarcMatters, historyLesson } from '../../plugins/mx6-learn/learn'
import type { DmarcOutcome } from '../../plugins/mx6-receive/dmarc'

const box = (a: string, delim = '') => normaliseMailbox(a.split('@')[0], a.split('@')[1], delim)
const local = (d: string) => d === 'rcpt.test' || d.endsWith('.rcpt.test')

describe('mx6-learn: book lessons', () => {
  it('adds the external recipients of a local user, normalised', () => {
    const l = bookLesson(box('Alice+work@rcpt.test', '+'), [box('Friend@Other.TEST'), box('bob@rcpt.test'), box('carol@sub.rcpt.test'), box('friend@other.test'), null], local)
    assert.deepEqual(l, { owner: 'alice@rcpt.test', members: ['friend@other.test'] })
  })
  it('learns nothing from a sender outside our domains, or without external recipients', () => {
    assert.equal(bookLesson(box('x@elsewhere.test'), [box('friend@other.test')], local), null)
    assert.equal(bookLesson(box('alice@rcpt.test'), [box('bob@rcpt.test')], local), null)
    assert.equal(bookLesson(null, [box('friend@other.test')], local), null)
  })
})

describe('mx6-learn: history lessons', () => {
  const from = (a: string) => ({ mailbox: box(a)! })
  const rows: Array<[string, Parameters<typeof historyLesson>[0], string | null]> = [
    ['aligned SPF pass', { spf: { result: 'pass', domain: 'allowed.test' }, dkimPass: [], from: from('news@allowed.test') }, 'allowed.test'],
    ['DKIM pass of a subdomain (relaxed)', { spf: null, dkimPass: ['mail.allowed.test'], from: from('news@allowed.test') }, 'allowed.test'],
    ['SPF pass of another domain', { spf: { result: 'pass', domain: 'other.test' }, dkimPass: [], from: from('ceo@allowed.test') }, null],
    ['SPF fail', { spf: { result: 'fail', domain: 'allowed.test' }, dkimPass: [], from: from('news@allowed.test') }, null],
    ['no From', { spf: { result: 'pass', domain: 'allowed.test' }, dkimPass: [], from: { problem: 'no From header' } }, null],
  ]
  for (const [name, facts, want] of rows) {
    it(`${name} -> ${want ?? 'nothing'}`, () => assert.equal(historyLesson(facts, 'relaxed')?.domain ?? null, want))
  }
  it('strict alignment needs the exact domain', () => {
    assert.equal(historyLesson({ spf: null, dkimPass: ['mail.allowed.test'], from: from('news@allowed.test') }, 'strict'), null)
  })
  it("DMARC decides as mx6-receive does: the record's alignment, fail and temperror learn nothing", () => {
    const dmarc = (result: DmarcOutcome['result'], aligned: string | null = null): DmarcOutcome => ({ result, domain: 'allowed.test', policy: 'reject', aligned, authResults: `dmarc=${result} header.from=allowed.test` })
    const relaxed = { spf: { result: 'pass', domain: 'mail.allowed.test' }, dkimPass: [], from: from('news@allowed.test') }
    assert.equal(historyLesson({ ...relaxed, dmarc: dmarc('fail') }, 'relaxed'), null, 'adkim=s/aspf=s record: no history')
    assert.equal(historyLesson({ ...relaxed, dmarc: dmarc('temperror') }, 'relaxed'), null)
    assert.deepEqual(historyLesson({ ...relaxed, dmarc: dmarc('pass', 'spf mail.allowed.test') }, 'strict'), {
      domain: 'allowed.test',
      reason: 'From allowed.test authenticated via mail.allowed.test (dmarc=pass header.from=allowed.test)',
    })
    assert.equal(historyLesson({ ...relaxed, dmarc: dmarc('none') }, 'relaxed')?.domain, 'allowed.test', 'no record: the alignment key')
  })
  it('DMARC is looked up only when a pass could align', () => {
    assert.equal(dmarcMatters({ spf: { result: 'pass', domain: 'x.test' }, dkimPass: [], from: from('a@allowed.test') }), true)
    assert.equal(dmarcMatters({ spf: null, dkimPass: ['x.test'], from: from('a@allowed.test') }), true)
    assert.equal(dmarcMatters({ spf: { result: 'fail', domain: 'x.test' }, dkimPass: [], from: from('a@allowed.test') }), false)
    assert.equal(dmarcMatters({ spf: { result: 'pass', domain: 'x.test' }, dkimPass: [], from: { problem: 'no From header' } }), false)
  })
})

describe('mx6-learn: settings', () => {
  it('has defaults and reads every key', () => {
    assert.deepEqual(readLearnConfig({}).config.books, { enabled: true, maxAgeDays: 365, maxEntries: 5000 })
    const { config, errors } = readLearnConfig({
      books: { enabled: false, max_age_days: '30', max_entries: '10', local_domains: 'a.test, B.test', recipient_delimiter: '-' },
      history: { enabled: false, alignment: 'strict', ttl_days: '10', dmarc: false },
    })
    assert.deepEqual(errors, [])
    assert.deepEqual(config.books, { enabled: false, maxAgeDays: 30, maxEntries: 10 })
    assert.deepEqual(config.history, { enabled: false, alignment: 'strict', ttlDays: 10, dmarc: false })
    assert.equal(readLearnConfig({}).config.history.dmarc, true)
    assert.deepEqual(config.localDomains, ['a.test', 'b.test'])
    assert.equal(config.recipientDelimiter, '-')
  })
  it('reports bad values', () => {
    const { config, errors } = readLearnConfig({ books: { max_entries: '0' }, history: { alignment: 'loose' } })
    assert.equal(config.books.maxEntries, 5000)
    assert.equal(config.history.alignment, 'relaxed')
    assert.equal(errors.length, 2)
  })
})
