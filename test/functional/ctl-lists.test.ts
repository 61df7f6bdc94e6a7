// mx6ctl allow|green ... add|rm|ls against a private, real redis-server.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { ctl, useCtlRedis } from '../support/ctl'
import { tempDir } from '../support/proc'
import { RedisServer } from '../support/redis'

describe('functional: mx6ctl allow/green lists', function () {
  this.timeout(30000)
  const redis = useCtlRedis()
  let server: RedisServer

  before(async () => {
    server = redis.server
  })
  beforeEach(() => server.cli('FLUSHALL'))

  const lists: Array<{ argv: string[]; key: string; entry: string; typed: string }> = [
    { argv: ['allow', 'ip'], key: 'mx6:ip:allow', entry: '2001:db8:1::/48', typed: '2001:DB8:1:0::/48' },
    { argv: ['allow', 'domain'], key: 'mx6:domain:allow', entry: 'example.org', typed: 'Example.ORG.' },
    { argv: ['green', 'ip'], key: 'mx6:ip:green', entry: '2001:db8::25', typed: '2001:db8:0::25/128' },
    { argv: ['green', 'domain'], key: 'mx6:domain:green', entry: 'xn--bcher-kva.example', typed: 'Bücher.example' },
    { argv: ['green', 'host'], key: 'mx6:host:green', entry: 'relay.example.net', typed: 'RELAY.example.net' },
    { argv: ['green', 'asn'], key: 'mx6:asn:green', entry: '64500', typed: 'AS64500' },
    { argv: ['arc'], key: 'mx6:arc:trusted', entry: 'lists.example.org', typed: 'Lists.Example.ORG.' },
  ]

  for (const l of lists) {
    it(`${l.argv.join(' ')}: add (canonicalised, said so), ls, ls --json, rm`, async () => {
      const add = await ctl(...l.argv, 'add', l.typed, 'partner', 'relay')
      assert.equal(add.code, 0, add.err)
      assert.match(add.out, new RegExp(`written in canonical form as ${l.entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`))
      assert.match(add.out, /added .* to mx6:/)
      assert.equal(await server.cli('HGET', l.key, l.entry), 'partner relay')
      assert.equal(await server.cli('HLEN', l.key), '1')

      const plain = await ctl(...l.argv, 'add', l.entry)
      assert.equal(plain.code, 0, plain.err)
      assert.doesNotMatch(plain.out, /canonical form/)
      assert.match(plain.out, /updated .* \(was "partner relay"\)/)
      assert.match(await server.cli('HGET', l.key, l.entry), /^added by mx6ctl \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)

      const ls = await ctl(...l.argv, 'ls')
      assert.equal(ls.code, 0, ls.err)
      assert.match(ls.out, new RegExp(`^${l.key}: 1 entry\\n  ${l.entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}  added by mx6ctl`))
      const json = await ctl(...l.argv, 'ls', '--json')
      assert.equal(json.code, 0)
      const parsed = JSON.parse(json.out)
      assert.equal(parsed.key, l.key)
      assert.deepEqual(Object.keys(parsed.entries), [l.entry])

      const rm = await ctl(...l.argv, 'rm', l.typed)
      assert.equal(rm.code, 0, rm.err)
      assert.match(rm.out, /^removed /)
      assert.equal(await server.cli('EXISTS', l.key), '0')
      const again = await ctl(...l.argv, 'rm', l.entry)
      assert.equal(again.code, 1)
      assert.match(again.err, new RegExp(`is not in ${l.key}$`))
      assert.equal(again.err.split('\n').length, 1)
    })
  }

  it('ls sorts and aligns entries with their notes', async () => {
    for (const [e, n] of [
      ['2001:db8:10::/48', 'ten'],
      ['2001:db8:9::/48', 'nine'],
      ['2001:db8:9::1', 'one host'],
    ]) {
      assert.equal((await ctl('allow', 'ip', 'add', e, n)).code, 0)
    }
    const ls = await ctl('allow', 'ip', 'ls')
    assert.equal(ls.out, ['mx6:ip:allow: 3 entries', '  2001:db8:9::/48   nine', '  2001:db8:9::1     one host', '  2001:db8:10::/48  ten'].join('\n'))
    const empty = await ctl('green', 'asn', 'ls')
    assert.equal(empty.out, 'mx6:asn:green is empty')
    assert.deepEqual(JSON.parse((await ctl('green', 'asn', 'ls', '--json')).out), { key: 'mx6:asn:green', entries: {} })
  })

  it('refuses host bits, garbage, public suffixes and bad AS numbers with exit 2 and writes nothing', async () => {
    const refused: Array<[string[], RegExp]> = [
      [['allow', 'ip', 'add', '2001:db8:1::1/48'], /host bits set .* Did you mean 2001:db8:1::\/48\?/],
      [['allow', 'ip', 'add', '192.0.2.1'], /not an IPv6 address/],
      [['green', 'ip', 'add', '::ffff:192.0.2.1'], /IPv4-mapped/],
      [['allow', 'ip', 'add', 'fe80::1%eth0'], /zone id/],
      [['allow', 'domain', 'add', 'co.uk'], /public suffix/],
      [['allow', 'domain', 'add', '*.example.org'], /wildcards/],
      [['green', 'host', 'add', 'not a host'], /not a valid domain name/],
      [['green', 'asn', 'add', '0'], /reserved/],
      [['green', 'asn', 'add', '4294967296'], /out of range/],
      [['green', 'asn', 'add', 'AS-FOO'], /not an AS number/],
      [['allow', 'domain', 'add', 'example.org', 'bad\nnote'], /printable/],
    ]
    for (const [argv, why] of refused) {
      const r = await ctl(...argv)
      assert.equal(r.code, 2, argv.join(' '))
      assert.match(r.err, why, argv.join(' '))
      assert.equal(r.err.split('\n').length, 1, r.err)
      assert.ok(r.err.endsWith(`; see \`mx6ctl ${argv[0]} --help\``), r.err)
      assert.doesNotMatch(r.err, /\n\s+at /)
    }
    assert.equal(await server.cli('DBSIZE'), '0')
  })

  it('usage errors exit 2: allow host/asn do not exist, unknown kinds and actions, missing arguments', async () => {
    for (const argv of [['allow', 'host', 'add', 'relay.example.net'], ['allow', 'asn', 'ls'], ['green', 'mail', 'ls'], ['green', 'ip', 'list'], ['allow', 'ip', 'add'], ['allow'], ['allow', 'ip', 'ls', 'extra']]) {
      const r = await ctl(...argv)
      assert.equal(r.code, 2, argv.join(' '))
      assert.match(r.err, /^mx6ctl (allow|green): /)
    }
    const host = await ctl('allow', 'host', 'add', 'relay.example.net')
    assert.match(host.err, /host and asn lists are green-only/)
    assert.equal(await server.cli('DBSIZE'), '0')
    const help = await ctl('green', '--help')
    assert.equal(help.code, 0)
    assert.match(help.out, /Usage: mx6ctl green ip\|domain\|host\|asn add \[--force\] <entry> \[note\.\.\.\]/)
  })

  it('rm also removes an entry typed by hand in a non-canonical spelling, and add replaces it', async () => {
    await server.cli('HSET', 'mx6:ip:allow', '2001:DB8::7', 'typed by hand', 'junk entry', 'x')
    const add = await ctl('allow', 'ip', 'add', '2001:DB8::7', 'fixed')
    assert.equal(add.code, 0, add.err)
    assert.match(add.out, /removed the non-canonical entry "2001:DB8::7"/)
    assert.equal(await server.cli('HGET', 'mx6:ip:allow', '2001:db8::7'), 'fixed')
    assert.equal(await server.cli('HEXISTS', 'mx6:ip:allow', '2001:DB8::7'), '0')
    const rm = await ctl('allow', 'ip', 'rm', 'junk entry')
    assert.equal(rm.code, 0, rm.err)
    assert.equal(await server.cli('HEXISTS', 'mx6:ip:allow', 'junk entry'), '0')
    const ls = await ctl('allow', 'ip', 'ls')
    assert.equal(ls.out, 'mx6:ip:allow: 1 entry\n  2001:db8::7  fixed')
  })

  it('a key of the wrong type is one clear line and exit 1', async () => {
    await server.cli('SET', 'mx6:domain:allow', 'oops')
    const ls = await ctl('allow', 'domain', 'ls')
    assert.equal(ls.code, 1)
    assert.match(ls.err, /^mx6ctl allow: mx6:domain:allow is a string, not a hash/)
    const add = await ctl('allow', 'domain', 'add', 'example.org')
    assert.equal(add.code, 1)
    assert.match(add.err, /^mx6ctl allow: redis error: WRONGTYPE/)
    assert.equal(add.err.split('\n').length, 1)
    assert.equal(await server.cli('GET', 'mx6:domain:allow'), 'oops')
  })

  it('an IP entry wider than a /16 needs --force, says why without it (exit 2) and writes nothing', async () => {
    const everything = await ctl('allow', 'ip', 'add', '::/0', 'oops')
    assert.equal(everything.code, 2)
    assert.equal(everything.err, 'mx6ctl allow: ::/0 would allow-list every IPv6 peer; add --force if you mean it; see `mx6ctl allow --help`')
    const region = await ctl('green', 'ip', 'add', '2000::/3')
    assert.equal(region.code, 2)
    assert.match(region.err, /^mx6ctl green: 2000::\/3 would greenlist more than a \/16 \(8192 \/16 networks\); add --force if you mean it; see `mx6ctl green --help`$/)
    // Typed as ::0/0, still every peer.
    assert.equal((await ctl('allow', 'ip', 'add', '0::0/0')).code, 2)
    assert.equal(await server.cli('DBSIZE'), '0')

    const slash16 = await ctl('allow', 'ip', 'add', '2001::/16', 'a /16 is fine')
    assert.equal(slash16.code, 0, slash16.err)
    const forced = await ctl('allow', 'ip', 'add', '--force', '::/0', 'test lab: everything')
    assert.equal(forced.code, 0, forced.err)
    assert.equal(await server.cli('HGET', 'mx6:ip:allow', '::/0'), 'test lab: everything')
    const forcedAfter = await ctl('green', 'ip', 'add', '2000::/3', 'global unicast', '--force')
    assert.equal(forcedAfter.code, 0, forcedAfter.err)
    assert.equal(await server.cli('HGET', 'mx6:ip:green', '2000::/3'), 'global unicast')
  })

  it('an IP entry that skip_private makes inert is added with a note saying so; not with skip_private=false', async () => {
    const inert: Array<[string[], RegExp]> = [
      [['allow', 'ip', 'add', '::1', 'local test'], /^note: ::1 is the loopback address: Haraka calls such peers private and mx6-receive skips them while \[main\] skip_private=true, so this entry has no effect until skip_private=false$/m],
      [['green', 'ip', 'add', 'fd00:1::/32'], /^note: fd00:1::\/32 is unique local \(fc00::\/7\): .*skip_private=true/m],
      [['allow', 'ip', 'add', 'FE80::1'], /^note: fe80::1 is link-local \(fe80::\/10\): .*skip_private=true/m],
    ]
    for (const [argv, note] of inert) {
      const r = await ctl(...argv)
      assert.equal(r.code, 0, r.err)
      assert.match(r.out, /^added /m)
      assert.match(r.out, note, argv.join(' '))
    }
    assert.equal(await server.cli('HLEN', 'mx6:ip:allow'), '2')
    assert.equal(await server.cli('HLEN', 'mx6:ip:green'), '1')
    for (const argv of [['allow', 'ip', 'add', '2001:db8::1'], ['green', 'ip', 'add', 'fc00::/6', '--force'], ['allow', 'domain', 'add', 'example.org']]) {
      const r = await ctl(...argv)
      assert.equal(r.code, 0, r.err)
      assert.doesNotMatch(r.out, /skip_private/, argv.join(' '))
    }
    // The instance's own setting decides.
    const haraka = tempDir('ctl-skip-private')
    fs.mkdirSync(path.join(haraka, 'config'))
    fs.writeFileSync(path.join(haraka, 'config', 'mx6-receive.ini'), `[main]\nskip_private=false\n[redis]\nport=${server.port}\n`)
    const off = await ctl('--config', haraka, 'allow', 'ip', 'add', '::1', 'demo')
    assert.equal(off.code, 0, off.err)
    assert.doesNotMatch(off.out, /skip_private/)
  })

  it('words of a note that start with "-" go after --', async () => {
    const r = await ctl('green', 'asn', 'add', '64501', '--', '-strict', 'abuse desk')
    assert.equal(r.code, 0, r.err)
    assert.equal(await server.cli('HGET', 'mx6:asn:green', '64501'), '-strict abuse desk')
    assert.equal((await ctl('green', 'asn', 'add', '64502', '-x')).code, 2)
  })
})
