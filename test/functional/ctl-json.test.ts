// Every reporting mx6ctl command takes --json and prints one JSON document (nothing else on
// stdout), against a private, real redis-server; Redis trouble stays exit 1.
import assert from 'node:assert/strict'
import { ctl, useCtlRedis } from '../support/ctl'
import { RedisServer } from '../support/redis'

describe('functional: mx6ctl --json on every reporting command', function () {
  this.timeout(30000)
  const redis = useCtlRedis()
  let server: RedisServer

  before(async () => {
    server = redis.server
    await server.cli('FLUSHALL')
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8::/32', 'partner')
    await server.cli('SADD', 'mx6:book:bob@example.com', 'alice@example.org')
  })

  // dns check --json asks DNS: covered by the e2e tests in the test bed.
  const reports: Array<[string[], (j: unknown) => void]> = [
    [['allow', 'ip', 'ls', '--json'], (j) => assert.deepEqual(j, { key: 'mx6:ip:allow', entries: { '2001:db8::/32': 'partner' } })],
    [['green', 'host', 'ls', '--json'], (j) => assert.deepEqual(j, { key: 'mx6:host:green', entries: {} })],
    [['book', 'ls', 'Bob+x@Example.com', '--json'], (j) => assert.deepEqual(j, { recipient: 'bob@example.com', key: 'mx6:book:bob@example.com', members: ['alice@example.org'] })],
    [['sync', 'ls', '--json'], (j) => assert.deepEqual(j, { key: 'mx6:sources', sources: [] })],
    [['lint', '--json'], (j) => assert.equal((j as { ok: boolean }).ok, true)],
    [['stats', '--days', '2', '--json'], (j) => assert.equal((j as { days: unknown[] }).days.length, 2)],
    [['fallbacks', '--json'], (j) => assert.deepEqual(j, [])],
    [['followup', '--json'], (j) => assert.equal((j as { deferred: number }).deferred, 0)],
    [['followup', '--suggest', '--json'], (j) => assert.deepEqual(j, [])],
    [['explain', '--ip', '192.0.2.1', '--json'], (j) => assert.equal((j as { peer: { family: string } }).peer.family, 'ipv4')],
    [['version', '--json'], (j) => assert.equal(typeof (j as { version: unknown }).version, 'string')],
  ]
  for (const [argv, check] of reports) {
    it(argv.join(' '), async () => {
      const r = await ctl(...argv)
      assert.equal(r.code, 0, r.err)
      check(JSON.parse(r.out))
    })
  }

  it('Redis trouble stays exit 1 with --json, one line on stderr and no JSON', async () => {
    const gone = await RedisServer.start()
    await gone.stop()
    const saved = process.env.MX6_REDIS_URL
    process.env.MX6_REDIS_URL = gone.url
    try {
      for (const argv of [['lint', '--json'], ['allow', 'ip', 'ls', '--json'], ['explain', '--ip', '2001:db8::1', '--json']]) {
        const r = await ctl(...argv)
        assert.equal(r.code, 1, argv.join(' '))
        assert.equal(r.out, '', argv.join(' '))
        assert.equal(r.err.split('\n').length, 1, r.err)
        assert.match(r.err, /cannot connect to redis/)
      }
    } finally {
      process.env.MX6_REDIS_URL = saved
    }
  })
})
