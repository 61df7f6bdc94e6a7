// DMARC (RFC 7489) over a zone table: discovery, alignment per tag, sp=, and errors as data.
import assert from 'node:assert/strict'
import { CachingResolver, type Lookup, type RawReply } from '../../../plugins/lib/dns'
import { evaluateDmarc, parseRecord, type DmarcOutcome } from '../../../plugins/mx6-receive/dmarc'
import { dnsError } from '../../../plugins/mx6-receive/mailauth-dns'
import { TableClient, type Zone } from '../../support/table-dns'

const txt = (...records: string[]): RawReply => ({ rcode: 0, answers: records.map((r) => ({ type: 16, ttl: 60, data: [r] })), authorities: [] })
const resolver = (zone: Zone) => new CachingResolver(new TableClient(zone), { negativeTtl: 0, maxTtl: 0 })

const ZONE: Zone = {
  'TXT _dmarc.example.com': txt('v=DMARC1; p=reject; rua=mailto:d@example.com'),
  'TXT _dmarc.strict.test': txt('v=DMARC1; p=quarantine; adkim=s; aspf=s'),
  'TXT _dmarc.sdkim.test': txt('v=DMARC1; p=reject; adkim=s'),
  'TXT _dmarc.sspf.test': txt('v=DMARC1; p=reject; aspf=s'),
  'TXT _dmarc.subpol.test': txt('v=DMARC1; p=reject; sp=none'),
  'TXT _dmarc.own.subpol.test': txt('v=DMARC1; p=quarantine'),
  // Split into two strings of one record: they are joined (RFC 7208 section 3.3 style).
  'TXT _dmarc.split.test': { rcode: 0, answers: [{ type: 16, ttl: 60, data: ['v=DMARC1; ', 'p=quarantine'] }], authorities: [] },
  'TXT _dmarc.other-txt.test': txt('google-site-verification=abc', 'v=DMARC1; p=reject'),
  'TXT _dmarc.unrelated.test': txt('some-verification=abc'),
  'TXT _dmarc.two.test': txt('v=DMARC1; p=none', 'v=DMARC1; p=reject'),
  'TXT _dmarc.two-org.test': txt('v=DMARC1; p=reject'),
  'TXT _dmarc.sub.two-org.test': txt('v=DMARC1; p=none', 'v=DMARC1; p=quarantine'),
  'TXT _dmarc.nop.test': txt('v=DMARC1; rua=mailto:d@nop.test'),
  'TXT _dmarc.badp.test': txt('v=DMARC1; p=block'),
  'TXT _dmarc.badadkim.test': txt('v=DMARC1; p=reject; adkim=x'),
  'TXT _dmarc.badpct.test': txt('v=DMARC1; p=reject; pct=150'),
  'TXT _dmarc.twice.test': txt('v=DMARC1; p=none; p=reject'),
  'TXT _dmarc.notag.test': txt('v=DMARC1; p=reject; garbage'),
  'TXT _dmarc.vlater.test': txt('p=reject; v=DMARC1'),
  'TXT _dmarc.nov.test': txt('p=reject; adkim=s'),
  'TXT _dmarc.sub.badsub.test': txt('p=none'),
  'TXT _dmarc.badsub.test': txt('v=DMARC1; p=reject'),
  'TXT _dmarc.unknown-tag.test': txt('v=DMARC1; p=reject; xyz=1'),
  'TXT _dmarc.servfail.test': { rcode: 2, answers: [], authorities: [] },
  'TXT _dmarc.broken.test': new Error('connection refused'),
  'TXT _dmarc.sub.orgfail.test': { rcode: 0, answers: [], authorities: [] },
  'TXT _dmarc.orgfail.test': { rcode: 2, answers: [], authorities: [] },
  'TXT _dmarc.co.uk': txt('v=DMARC1; p=reject'),
  'TXT _dmarc.alice.github.io': txt('v=DMARC1; p=reject'),
}

type Row = [name: string, from: string, spf: string | null, dkim: string[], want: Partial<DmarcOutcome>]
const ROWS: Row[] = [
  // Alignment, relaxed by default (section 3.1).
  ['DKIM pass of the From domain', 'example.com', null, ['example.com'], { result: 'pass', domain: 'example.com', policy: 'reject', aligned: 'dkim example.com', authResults: 'dmarc=pass (p=REJECT) header.from=example.com' }],
  ['SPF pass of the From domain', 'example.com', 'example.com', [], { result: 'pass', aligned: 'spf example.com' }],
  ['SPF pass of a subdomain, relaxed', 'example.com', 'bounce.example.com', [], { result: 'pass', aligned: 'spf bounce.example.com' }],
  ['DKIM pass of a subdomain, relaxed', 'example.com', null, ['mail.example.com'], { result: 'pass', aligned: 'dkim mail.example.com' }],
  ['DKIM preferred over SPF when both align', 'example.com', 'example.com', ['example.com'], { result: 'pass', aligned: 'dkim example.com' }],
  ['DKIM pass of another domain -> fail', 'example.com', null, ['list.test'], { result: 'fail', policy: 'reject', aligned: null, authResults: 'dmarc=fail (p=REJECT) header.from=example.com' }],
  ['SPF pass of another domain -> fail', 'example.com', 'bulk.test', [], { result: 'fail', aligned: null }],
  ['nothing passed -> fail', 'example.com', null, [], { result: 'fail' }],
  ['an unaligned DKIM pass beside an aligned one', 'example.com', null, ['list.test', 'example.com'], { result: 'pass', aligned: 'dkim example.com' }],
  // Strict per tag.
  ['adkim=s aspf=s: exact DKIM', 'strict.test', null, ['strict.test'], { result: 'pass', policy: 'quarantine', aligned: 'dkim strict.test' }],
  ['adkim=s: DKIM of a subdomain -> fail', 'strict.test', null, ['mail.strict.test'], { result: 'fail' }],
  ['aspf=s: SPF pass of a relaxed-aligned subdomain -> fail', 'strict.test', 'mail.strict.test', [], { result: 'fail', aligned: null }],
  ['adkim=s only: subdomain DKIM fails, subdomain SPF passes relaxed', 'sdkim.test', 'bounce.sdkim.test', ['mail.sdkim.test'], { result: 'pass', aligned: 'spf bounce.sdkim.test' }],
  ['aspf=s only: subdomain SPF fails, subdomain DKIM passes relaxed', 'sspf.test', 'bounce.sspf.test', ['mail.sspf.test'], { result: 'pass', aligned: 'dkim mail.sspf.test' }],
  ['aspf=s only: SPF pass of a subdomain alone -> fail', 'sspf.test', 'bounce.sspf.test', [], { result: 'fail' }],
  ['strict: the parent of the From domain does not align', 'strict.test', null, [], { result: 'fail' }],
  // Discovery (section 6.6.3) and the subdomain policy.
  ['org domain fallback for a subdomain', 'a.b.example.com', null, ['example.com'], { result: 'pass', domain: 'example.com', policy: 'reject' }],
  ['sp= applies to a subdomain under the org record', 'deep.subpol.test', null, [], { result: 'fail', domain: 'subpol.test', policy: 'none', authResults: 'dmarc=fail (p=REJECT sp=NONE) header.from=deep.subpol.test' }],
  ['p= applies to the org domain itself', 'subpol.test', null, [], { result: 'fail', domain: 'subpol.test', policy: 'reject' }],
  ["a subdomain's own record wins over the org's sp=", 'own.subpol.test', null, [], { result: 'fail', domain: 'own.subpol.test', policy: 'quarantine' }],
  ['a record in two strings is joined', 'split.test', null, ['split.test'], { result: 'pass', policy: 'quarantine' }],
  ['other TXT beside the DMARC record are discarded', 'other-txt.test', null, [], { result: 'fail', policy: 'reject' }],
  ['an unrelated TXT only -> none', 'unrelated.test', null, ['unrelated.test'], { result: 'none', policy: null, authResults: 'dmarc=none header.from=unrelated.test' }],
  ['no record at all -> none', 'norecord.test', 'norecord.test', ['norecord.test'], { result: 'none', domain: 'norecord.test', policy: null, aligned: null }],
  ['two DMARC records -> none', 'two.test', null, ['two.test'], { result: 'none' }],
  ['two records at the subdomain: no fallback to the org record', 'sub.two-org.test', null, [], { result: 'none' }],
  ['unknown tags are ignored', 'unknown-tag.test', null, ['unknown-tag.test'], { result: 'pass' }],
  ['PSL: co.uk is a public suffix, no org fallback to it', 'shop.co.uk', null, [], { result: 'none' }],
  ['PSL private section: alice.github.io is its own org domain', 'x.alice.github.io', null, ['bob.github.io'], { result: 'fail', domain: 'alice.github.io' }],
  ['upper case and a trailing dot in the inputs', 'Example.COM.', null, ['EXAMPLE.com'], { result: 'pass', domain: 'example.com' }],
  // Malformed records (section 11.2 "permerror").
  ['no p= -> permerror', 'nop.test', null, ['nop.test'], { result: 'permerror', policy: null, authResults: 'dmarc=permerror (_dmarc.nop.test: no p= tag) header.from=nop.test' }],
  ['bad p= value -> permerror', 'badp.test', null, [], { result: 'permerror' }],
  ['bad adkim= value -> permerror', 'badadkim.test', null, [], { result: 'permerror' }],
  ['pct over 100 -> permerror', 'badpct.test', null, [], { result: 'permerror' }],
  ['a tag given twice -> permerror', 'twice.test', null, [], { result: 'permerror' }],
  ['a part without "=" -> permerror', 'notag.test', null, [], { result: 'permerror' }],
  ['v=DMARC1 not first -> permerror', 'vlater.test', null, ['vlater.test'], { result: 'permerror', domain: 'vlater.test' }],
  ['v=DMARC1 missing -> permerror', 'nov.test', null, [], { result: 'permerror' }],
  ['a broken subdomain record is not skipped for the org record', 'sub.badsub.test', null, ['badsub.test'], { result: 'permerror', domain: 'sub.badsub.test' }],
  ['an unusable From domain -> permerror', 'not a domain', null, [], { result: 'permerror', policy: null }],
  // DNS failure (section 6.6.3: temporary).
  ['SERVFAIL -> temperror', 'servfail.test', null, ['servfail.test'], { result: 'temperror', policy: null, aligned: null }],
  ['resolver error -> temperror', 'broken.test', null, [], { result: 'temperror' }],
  ['SERVFAIL at the org domain after NODATA -> temperror', 'sub.orgfail.test', null, [], { result: 'temperror' }],
]

describe('dmarc: evaluateDmarc over a zone table', () => {
  for (const [name, from, spf, dkim, want] of ROWS) {
    it(name, async () => {
      const got = await evaluateDmarc({ fromDomain: from, spfPassDomain: spf, dkimPassDomains: dkim }, resolver(ZONE), 1000)
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k as keyof DmarcOutcome], v, `${k}: ${JSON.stringify(got)}`)
    })
  }

  it('a lookup that does not answer in time -> temperror, within the time', async () => {
    const hanging = { txt: (): Promise<Lookup<string>> => new Promise(() => {}) }
    const t0 = Date.now()
    const got = await evaluateDmarc({ fromDomain: 'example.com', spfPassDomain: null, dkimPassDomains: ['example.com'] }, hanging, 50)
    assert.equal(got.result, 'temperror')
    assert.match(got.authResults, /^dmarc=temperror \(DNS: TXT _dmarc\.example\.com: timed out\) header\.from=example\.com$/)
    assert.ok(Date.now() - t0 < 1000)
  })

  it('a resolver that rejects (against its contract) -> temperror, not a throw', async () => {
    const rejecting = { txt: (): Promise<Lookup<string>> => Promise.reject(new Error('boom')) }
    assert.equal((await evaluateDmarc({ fromDomain: 'example.com', spfPassDomain: null, dkimPassDomains: [] }, rejecting, 100)).result, 'temperror')
  })

  it('asks only _dmarc.<From> and _dmarc.<org domain>, each once', async () => {
    const client = new TableClient(ZONE)
    await evaluateDmarc({ fromDomain: 'a.b.example.com', spfPassDomain: null, dkimPassDomains: [] }, new CachingResolver(client, { negativeTtl: 0, maxTtl: 0 }), 1000)
    assert.deepEqual(client.queries, ['TXT _dmarc.a.b.example.com', 'TXT _dmarc.example.com'])
    const suffix = new TableClient(ZONE)
    await evaluateDmarc({ fromDomain: 'co.uk', spfPassDomain: null, dkimPassDomains: [] }, new CachingResolver(suffix, { negativeTtl: 0, maxTtl: 0 }), 1000)
    assert.deepEqual(suffix.queries, ['TXT _dmarc.co.uk'])
  })

  it('parseRecord: tags lower-cased, values checked', () => {
    const r = parseRecord('v=DMARC1;p=Reject ; sp = quarantine; adkim=S; fo=0:d; rf=afrf; ri=86400; pct=50;')
    assert.ok('tags' in r)
    assert.deepEqual(Object.fromEntries(r.tags), { v: 'DMARC1', p: 'reject', sp: 'quarantine', adkim: 's', fo: '0:d', rf: 'afrf', ri: '86400', pct: '50' })
    assert.deepEqual(parseRecord('v=DMARC1; p=none; fo=2'), { error: 'bad fo=2' })
  })
})

describe('dmarc: the answer errors mailauth is given', () => {
  it('carry code and message, no stack frames, and leave the stack trace limit as it was', () => {
    const limit = Error.stackTraceLimit
    const err = dnsError('ENOTFOUND', 'TXT _dmarc.example.com: nxdomain')
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'ENOTFOUND')
    assert.equal(err.message, 'TXT _dmarc.example.com: nxdomain')
    assert.doesNotMatch(err.stack ?? '', /\n\s+at /)
    assert.equal(Error.stackTraceLimit, limit)
    assert.match(new Error('x').stack ?? '', /\n\s+at /)
  })
})
