// Property-based tests (fast-check) of everything that takes text from the outside:
// many thousands of generated cases per run, including hostile ones.
import assert from 'node:assert/strict'
import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import { authResultsLines } from '../../plugins/lib/authres'
import { canonicalDomain } from '../../plugins/lib/domain'
import { candidatePrefixes, checkV6Entry, classifyPeer, joinedPrefixes } from '../../plugins/lib/ip'
import { Keys } from '../../plugins/lib/keys'
import { normaliseMailbox } from '../../plugins/lib/mailbox'
import { replyLines } from '../../plugins/lib/reply'

const RUNS = 5000
const anyText = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 100 }))
const v6Bytes = fc.uint8Array({ minLength: 16, maxLength: 16 })
const v6Text = v6Bytes.map((b) => ipaddr.fromByteArray(Array.from(b)).toString())
const REPLY_LINE = /^[\x20-\x7e]*$/

describe('properties: addresses and CIDRs', function () {
  this.timeout(30000)
  it('classifyPeer never throws and, for IPv6, returns the RFC 5952 text ipaddr.js gives', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, v6Text), (t) => {
        const r = classifyPeer(t)
        if (r && r.family === 'ipv6') assert.equal(r.canonical, (ipaddr.parse(r.canonical) as ipaddr.IPv6).toRFC5952String())
      }),
      { numRuns: RUNS },
    )
  })
  it('every candidate prefix is canonical, covers the address, and they are 129 distinct ones', () => {
    fc.assert(
      fc.property(v6Bytes, (b) => {
        const addr = (ipaddr.fromByteArray(Array.from(b)) as ipaddr.IPv6).toRFC5952String()
        if (ipaddr.IPv6.parse(addr).isIPv4MappedAddress()) return
        const c = candidatePrefixes(addr)
        assert.equal(c.length, 129)
        assert.equal(new Set(c).size, 129)
        assert.equal(c[0], addr)
        assert.equal(joinedPrefixes(c), [...c].join('\n'))
        c.forEach((cidr, i) => assert.equal(i === 0 ? 128 : Number(cidr.split('/')[1]), 128 - i, cidr))
        for (const cidr of c) {
          assert.deepEqual(checkV6Entry(cidr), { ok: true, canonical: cidr })
          if (cidr.includes('/')) assert.ok(ipaddr.IPv6.parse(addr).match(ipaddr.parseCIDR(cidr) as [ipaddr.IPv6, number]), cidr)
        }
      }),
      { numRuns: 300 },
    )
  })
  it('checkV6Entry never throws; a fix is always itself canonical', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, v6Text, fc.tuple(v6Text, fc.integer({ min: -5, max: 140 })).map(([a, n]) => `${a}/${n}`)), (t) => {
        const r = checkV6Entry(t)
        if (!r.ok && r.fix) assert.deepEqual(checkV6Entry(r.fix), { ok: true, canonical: r.fix })
      }),
      { numRuns: RUNS },
    )
  })
})

describe('properties: domains, mailboxes and Redis keys', function () {
  this.timeout(30000)
  it('canonicalDomain never throws, is idempotent, and yields only LDH A-labels', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, fc.domain()), (t) => {
        const d = canonicalDomain(t)
        if (d === null) return
        assert.match(d, /^[a-z0-9_.-]+$/)
        assert.ok(d.length <= 253)
        assert.equal(canonicalDomain(d), d)
      }),
      { numRuns: RUNS },
    )
  })
  it('a key built from any address stays under the prefix, bounded, with no control character', () => {
    const keys = new Keys('mx6:')
    fc.assert(
      fc.property(anyText, anyText, fc.constantFrom('', '+', '-'), (user, host, delim) => {
        const m = normaliseMailbox(user, host, delim)
        if (!m) return
        const key = keys.book(m.address)
        assert.ok(key.startsWith('mx6:book:'))
        assert.ok(Buffer.byteLength(key) <= 'mx6:book:'.length + 320)
        // eslint-disable-next-line no-control-regex
        assert.doesNotMatch(key, /[\x00-\x1f\x7f]/)
      }),
      { numRuns: RUNS },
    )
  })
})

describe('properties: SMTP reply text', function () {
  this.timeout(30000)
  it('replyLines: printable ASCII lines of at most 480 octets, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, fc.string({ unit: 'binary', maxLength: 5000 })), (t) => {
        for (const l of replyLines(t)) {
          assert.match(l, REPLY_LINE)
          assert.ok(Buffer.byteLength(`550-5.5.7 ${l}\r\n`) <= 512)
        }
      }),
      { numRuns: RUNS },
    )
  })
  it('Authentication-Results folding: safe lines, starts with the header name, continuation lines indented', () => {
    fc.assert(
      fc.property(fc.array(anyText, { maxLength: 8 }), anyText, (parts, id) => {
        const lines = authResultsLines(['mx.test', ...parts].join(';\r\n\t'), id)
        assert.match(lines[0], /^Authentication-Results: [^\s;]+;( none)?$/)
        for (const l of lines) {
          assert.match(l, REPLY_LINE)
          assert.ok(Buffer.byteLength(`550-5.5.7 ${l}\r\n`) <= 512)
        }
        for (const l of lines.slice(1)) assert.ok(l.startsWith(' '))
      }),
      { numRuns: RUNS },
    )
  })
})
