// mx6ctl sync against a private, real redis-server, and the first and second sync on a
// private Redis Cluster: what a run writes, what it leaves alone, what it refuses.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { RedisCluster } from '../support/cluster'
import { ctl, useCtlRedis } from '../support/ctl'
import { tempDir } from '../support/proc'
import { RedisServer } from '../support/redis'

const LIST = 'mx6:ip:allow'
const SRC = 'mx6:src:{mx6:ip:allow}:dwl'

/** An object of a hash's fields from redis-cli HGETALL output (field and value alternate, one a line). */
function hashOf(text: string): Record<string, string> {
  const lines = text === '' ? [] : text.split('\n')
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]] = lines[i + 1]
  return out
}

const FIRST = ['# dwl provider list', '2001:db8:1::/48', '2001:db8:2::/48 ; partner', '2001:DB8:3::/48', '2001:db8:4::25', '2001:db8:1::/48', '', '2001:db8:9::/48'].join('\n')
// 2001:db8:2::/48 and 2001:db8:3::/48 are gone, 2001:db8:5::/48 and 2001:db8:6::1 are new.
const SECOND = ['2001:db8:1::/48', '2001:db8:4::25', '2001:db8:5::/48', '2001:db8:6::1', '2001:db8:9::/48'].join('\n')

describe('functional: mx6ctl sync', function () {
  this.timeout(30000)
  const redis = useCtlRedis()
  let server: RedisServer
  let dir: string
  const file = (name: string, text: string): string => {
    const f = path.join(dir, name)
    fs.writeFileSync(f, text)
    return f
  }
  const hash = async (key = LIST) => hashOf(await server.cli('HGETALL', key))
  const members = async (key: string) => (await server.cli('SMEMBERS', key)).split('\n').filter(Boolean).sort()

  before(() => {
    server = redis.server
    dir = tempDir('ctl-sync')
  })
  beforeEach(async () => {
    await server.cli('FLUSHALL')
    // The operator's own entries, and another source's, before any sync.
    await server.cli('HSET', LIST, '2001:db8:9::/48', 'partner (mine)', '2001:db8:77::/48', 'mine too', '2001:db8:88::/48', 'source:other')
    await server.cli('SADD', 'mx6:src:{mx6:ip:allow}:other', '2001:db8:88::/48')
  })

  it('first sync: entries tagged, the operator`s entry with the same field untouched, silent when not on a terminal', async () => {
    const r = await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '')
    assert.equal(r.err, '')
    const h = await hash()
    assert.deepEqual(h, {
      '2001:db8:9::/48': 'partner (mine)',
      '2001:db8:77::/48': 'mine too',
      '2001:db8:88::/48': 'source:other',
      '2001:db8:1::/48': 'source:dwl',
      '2001:db8:2::/48': 'source:dwl',
      '2001:db8:3::/48': 'source:dwl',
      '2001:db8:4::25': 'source:dwl',
    })
    assert.deepEqual(await members(SRC), ['2001:db8:1::/48', '2001:db8:2::/48', '2001:db8:3::/48', '2001:db8:4::25'])
    assert.equal(await server.cli('TTL', SRC), '-1')
    assert.equal(await server.cli('KEYS', 'mx6:stage:*'), '')
    const lint = await ctl('lint')
    assert.equal(lint.code, 0, lint.out)
  })

  it('second sync: exact figures; the operator`s and the other source`s entries untouched', async () => {
    assert.equal((await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))).code, 0)
    const r = await ctl('sync', 'allow', 'ip', 'dwl', file('second.txt', SECOND), '--verbose')
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^sync allow ip dwl: added 2, removed 2, kept 2, owned elsewhere 1, withheld 0, rejected 0, duplicates 0 \(5 lines, \d+\.\d s\)$/)
    const h = await hash()
    assert.deepEqual(h, {
      '2001:db8:9::/48': 'partner (mine)',
      '2001:db8:77::/48': 'mine too',
      '2001:db8:88::/48': 'source:other',
      '2001:db8:1::/48': 'source:dwl',
      '2001:db8:4::25': 'source:dwl',
      '2001:db8:5::/48': 'source:dwl',
      '2001:db8:6::1': 'source:dwl',
    })
    assert.deepEqual(await members(SRC), ['2001:db8:1::/48', '2001:db8:4::25', '2001:db8:5::/48', '2001:db8:6::1'])
    assert.deepEqual(await members('mx6:src:{mx6:ip:allow}:other'), ['2001:db8:88::/48'])
  })

  it('--json: the figures as one object, duplicates and rewritten entries counted', async () => {
    const r = await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST), '--json')
    assert.equal(r.code, 0, r.err)
    const j = JSON.parse(r.out)
    assert.deepEqual(
      { added: j.added, removed: j.removed, kept: j.kept, ownedElsewhere: j.ownedElsewhere, withheld: j.withheld, rejected: j.rejected, duplicates: j.duplicates, lines: j.lines, entries: j.entries, rewritten: j.rewritten, owned: j.owned, key: j.key, dryRun: j.dryRun },
      { added: 4, removed: 0, kept: 0, ownedElsewhere: 1, withheld: 0, rejected: 0, duplicates: 1, lines: 8, entries: 6, rewritten: 1, owned: 4, key: LIST, dryRun: false },
    )
  })

  it('an entry the operator removed stays out while the source lists it, and rm says so; a re-add makes it the operator`s', async () => {
    await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))
    const rm = await ctl('allow', 'ip', 'rm', '2001:db8:2::/48')
    assert.equal(rm.code, 0, rm.err)
    assert.match(rm.out, /note: 2001:db8:2::\/48 came from source dwl \(mx6ctl sync\): while that source lists it, its syncs leave it out/)
    const again = await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST), '--json')
    assert.equal(JSON.parse(again.out).withheld, 1)
    assert.equal(JSON.parse(again.out).added, 0)
    assert.equal(await server.cli('HEXISTS', LIST, '2001:db8:2::/48'), '0')
    await ctl('allow', 'ip', 'add', '2001:db8:3::/48', 'now mine')
    const third = await ctl('sync', 'allow', 'ip', 'dwl', file('second.txt', SECOND), '--json')
    assert.equal(JSON.parse(third.out).removed, 0, 'neither the withheld nor the re-added entry is removed by the source')
    assert.equal(await server.cli('HGET', LIST, '2001:db8:3::/48'), 'now mine')
  })

  it('a file with bad lines: exit 1, line numbers on stderr, nothing changed in Redis', async () => {
    await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))
    const before = await server.cli('DEBUG', 'DIGEST')
    const bad = file('bad.txt', ['2001:db8:5::/48', '192.0.2.0/24', '2001:db8::1/32', '2001:db8:6::/48', 'not-an-address', '2000::/8'].join('\n'))
    const r = await ctl('sync', 'allow', 'ip', 'dwl', bad)
    assert.equal(r.code, 1)
    const lines = r.err.split('\n')
    assert.deepEqual(
      lines.slice(0, 4).map((l) => l.slice(bad.length).replace(/: .*/, '')),
      [':2', ':3', ':5', ':6'],
    )
    assert.match(lines[1], /did you mean 2001:db8::\/32\?/)
    assert.match(lines[3], /add --force/)
    assert.match(lines[4], /^mx6ctl sync: 4 rejected lines in .*; nothing changed$/)
    assert.equal(await server.cli('DEBUG', 'DIGEST'), before)
    assert.equal(await server.cli('KEYS', 'mx6:stage:*'), '')
  })

  it('--max-rejected N skips up to N rejected lines (still reported), refuses beyond', async () => {
    const bad = file('bad.txt', ['2001:db8:5::/48', 'junk', '2001:db8:6::/48', 'more junk'].join('\n'))
    const over = await ctl('sync', 'allow', 'ip', 'dwl', bad, '--max-rejected', '1')
    assert.equal(over.code, 1)
    assert.match(over.err, /at most 1 allowed by --max-rejected/)
    assert.equal(await server.cli('EXISTS', SRC), '0')
    const ok = await ctl('sync', 'allow', 'ip', 'dwl', bad, '--max-rejected', '2', '--json')
    assert.equal(ok.code, 0, ok.err)
    assert.match(ok.err, /bad\.txt:2: "junk"/)
    assert.match(ok.err, /bad\.txt:4: "more junk"/)
    const j = JSON.parse(ok.out)
    assert.equal(j.added, 2)
    assert.equal(j.rejected, 2)
    assert.deepEqual(await members(SRC), ['2001:db8:5::/48', '2001:db8:6::/48'])
  })

  it('--dry-run changes nothing and prints the difference', async () => {
    await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))
    const before = await server.cli('DEBUG', 'DIGEST')
    const r = await ctl('sync', 'allow', 'ip', 'dwl', file('second.txt', SECOND), '--dry-run')
    assert.equal(r.code, 0, r.err)
    const out = r.out.split('\n')
    assert.match(out[0], /^sync allow ip dwl \(dry run: nothing changed\): added 2, removed 2, kept 2, owned elsewhere 1, withheld 0,/)
    assert.deepEqual(out.filter((l) => l.startsWith('  +')).sort(), ['  + 2001:db8:5::/48', '  + 2001:db8:6::1'])
    assert.deepEqual(out.filter((l) => l.startsWith('  -')).sort(), ['  - 2001:db8:2::/48', '  - 2001:db8:3::/48'])
    assert.equal(await server.cli('DEBUG', 'DIGEST'), before)
  })

  it('an empty file is refused for a source with entries, unless --allow-empty', async () => {
    await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))
    const empty = file('empty.txt', '# nothing today\n')
    const r = await ctl('sync', 'allow', 'ip', 'dwl', empty)
    assert.equal(r.code, 1)
    assert.match(r.err, /no entries in .*: refusing to remove all 4 entries of source dwl .*--allow-empty/)
    assert.equal(await server.cli('SCARD', SRC), '4')
    const ok = await ctl('sync', 'allow', 'ip', 'dwl', empty, '--allow-empty', '--json')
    assert.equal(ok.code, 0, ok.err)
    assert.equal(JSON.parse(ok.out).removed, 4)
    assert.equal(await server.cli('EXISTS', SRC), '0')
    assert.deepEqual(Object.keys(await hash()).sort(), ['2001:db8:77::/48', '2001:db8:88::/48', '2001:db8:9::/48'])
  })

  it('an unreadable file: exit 1, one line', async () => {
    const r = await ctl('sync', 'allow', 'ip', 'dwl', path.join(dir, 'missing.txt'))
    assert.equal(r.code, 1)
    assert.match(r.err, /^mx6ctl sync: cannot read .*missing\.txt: no such file or directory$/)
  })

  it('usage errors: exit 2', async () => {
    for (const argv of [['sync'], ['sync', 'allow', 'ip', 'Bad Name', 'x'], ['sync', 'green', 'asn', 'x', 'y'], ['sync', 'allow', 'ip', 'dwl']]) {
      const r = await ctl(...argv)
      assert.equal(r.code, 2, argv.join(' '))
      assert.equal(r.err.split('\n').length, 1)
    }
  })

  it('domains: canonical A-labels, a green list', async () => {
    const r = await ctl('sync', 'green', 'domain', 'dwl', file('d.txt', 'Example.ORG.\nbücher.example\n'), '--json')
    assert.equal(r.code, 0, r.err)
    assert.deepEqual(await hash('mx6:domain:green'), { 'example.org': 'source:dwl', 'xn--bcher-kva.example': 'source:dwl' })
  })

  it('sync ls and sync rm: the sources, then exactly one source`s entries removed', async () => {
    await ctl('sync', 'allow', 'ip', 'dwl', file('first.txt', FIRST))
    await ctl('sync', 'green', 'domain', 'dwl', file('d.txt', 'example.org\n'))
    const ls = await ctl('sync', 'ls', '--json')
    assert.equal(ls.code, 0, ls.err)
    const j = JSON.parse(ls.out)
    assert.deepEqual(
      j.sources.map((s: { list: string; kind: string; source: string; entries: number; last: { added: number } }) => [s.list, s.kind, s.source, s.entries, s.last.added]),
      [
        ['allow', 'ip', 'dwl', 4, 4],
        ['green', 'domain', 'dwl', 1, 1],
      ],
    )
    const text = await ctl('sync', 'ls')
    assert.match(text.out, /^allow ip\s+dwl\s+4 entries\s+last run \d{4}-\d\d-\d\dT.*: added 4, removed 0, kept 0, owned elsewhere 1/)
    await ctl('allow', 'ip', 'add', '2001:db8:1::/48', 'taken over')
    const dry = await ctl('sync', 'rm', 'allow', 'ip', 'dwl', '--dry-run')
    assert.match(dry.out, /would remove 3 entries from mx6:ip:allow; 1 left alone/)
    assert.equal(await server.cli('SCARD', SRC), '4')
    const rm = await ctl('sync', 'rm', 'allow', 'ip', 'dwl')
    assert.equal(rm.code, 0, rm.err)
    assert.match(rm.out, /^sync rm allow ip dwl: removed 3 entries from mx6:ip:allow; 1 left alone/)
    assert.deepEqual(Object.keys(await hash()).sort(), ['2001:db8:1::/48', '2001:db8:77::/48', '2001:db8:88::/48', '2001:db8:9::/48'])
    assert.equal(await server.cli('EXISTS', SRC), '0')
    assert.equal(JSON.parse((await ctl('sync', 'ls', '--json')).out).sources.length, 1)
    const gone = await ctl('sync', 'rm', 'allow', 'ip', 'dwl')
    assert.equal(gone.code, 1)
  })
})

describe('functional: mx6ctl sync on a Redis Cluster', function () {
  this.timeout(60000)
  let cluster: RedisCluster
  let dir: string
  const saved = { url: process.env.MX6_REDIS_URL, config: process.env.MX6_CONFIG }

  before(async () => {
    cluster = await RedisCluster.start()
    dir = tempDir('ctl-sync-cluster')
    fs.mkdirSync(path.join(dir, 'config'))
    fs.writeFileSync(path.join(dir, 'config', 'mx6-receive.ini'), `[redis]\ncluster=${cluster.seeds.join(',')}\n`)
    delete process.env.MX6_REDIS_URL
    delete process.env.MX6_CONFIG
  })
  after(async () => {
    if (saved.url !== undefined) process.env.MX6_REDIS_URL = saved.url
    if (saved.config !== undefined) process.env.MX6_CONFIG = saved.config
    await cluster?.stop()
  })

  it('the list and its source set share a slot; the sources registry does not', async () => {
    assert.equal(await cluster.keySlot(SRC), await cluster.keySlot(LIST))
    assert.notEqual(await cluster.keySlot('mx6:sources'), await cluster.keySlot(LIST))
  })

  it('first and second sync, with exact figures', async () => {
    await cluster.cli('HSET', LIST, '2001:db8:9::/48', 'partner (mine)')
    const first = path.join(dir, 'first.txt')
    const second = path.join(dir, 'second.txt')
    fs.writeFileSync(first, FIRST)
    fs.writeFileSync(second, SECOND)
    const a = await ctl('--config', dir, 'sync', 'allow', 'ip', 'dwl', first, '--json')
    assert.equal(a.code, 0, a.err)
    assert.deepEqual([JSON.parse(a.out).added, JSON.parse(a.out).ownedElsewhere], [4, 1])
    const b = await ctl('--config', dir, 'sync', 'allow', 'ip', 'dwl', second, '--verbose')
    assert.equal(b.code, 0, b.err)
    assert.match(b.out, /^sync allow ip dwl: added 2, removed 2, kept 2, owned elsewhere 1, withheld 0, rejected 0, duplicates 0 /)
    assert.deepEqual(hashOf(await cluster.cli('HGETALL', LIST)), {
      '2001:db8:9::/48': 'partner (mine)',
      '2001:db8:1::/48': 'source:dwl',
      '2001:db8:4::25': 'source:dwl',
      '2001:db8:5::/48': 'source:dwl',
      '2001:db8:6::1': 'source:dwl',
    })
    const ls = await ctl('--config', dir, 'sync', 'ls', '--json')
    assert.equal(JSON.parse(ls.out).sources[0].entries, 4)
    const rm = await ctl('--config', dir, 'sync', 'rm', 'allow', 'ip', 'dwl')
    assert.match(rm.out, /removed 4 entries/)
    assert.deepEqual(hashOf(await cluster.cli('HGETALL', LIST)), { '2001:db8:9::/48': 'partner (mine)' })
  })
})
