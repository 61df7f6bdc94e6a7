// The peer list cache (CLIENT TRACKING) against a private, real redis-server:
// changes made with redis-cli are seen by the very next lookup, lost
// connections switch it off, and a user without the permissions never uses it.
import assert from 'node:assert/strict'
import { Keys } from '../../plugins/lib/keys'
import { candidatePrefixes } from '../../plugins/lib/ip'
import { createRedis, REDIS_DEFAULTS } from '../../plugins/lib/redis'
import { RedisListStore } from '../../plugins/lib/store'
import { poll } from '../support/proc'
import { RedisServer } from '../support/redis'

async function scriptCalls(server: RedisServer): Promise<number> {
  const stats = await server.cli('INFO', 'commandstats')
  const n = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0)
  return n('evalsha') + n('eval')
}

describe('functional: the peer list cache (CLIENT TRACKING) on a real redis-server', function () {
  this.timeout(20000)
  let server: RedisServer
  const keys = new Keys('mx6:')
  const open: RedisListStore[] = []

  function storeFor(extra: Partial<typeof REDIS_DEFAULTS> = {}): { store: RedisListStore; states: string[] } {
    const states: string[] = []
    const client = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: 500, ...extra })
    client.on('error', () => undefined)
    const store = new RedisListStore(client, keys, { timeoutMs: 500, statsDays: 30, peerCache: { entries: 100, maxAgeMs: 60000, onState: (on, why) => states.push(`${on ? 'on' : 'off'}: ${why}`) } })
    open.push(store)
    return { store, states }
  }
  const ask = (store: RedisListStore, ip: string) => store.lookup({ ipCandidates: candidatePrefixes(ip), ipGreenCandidates: candidatePrefixes(ip) })
  const cacheOn = (store: RedisListStore, want = true) => poll(() => (store.peerCacheOn === want ? true : undefined), 5000, `peer cache ${want ? 'on' : 'off'}`)

  before(async () => {
    server = await RedisServer.start()
  })
  after(async () => {
    for (const s of open) await s.close()
    await server?.stop()
  })

  it('answers a repeat peer without Redis, and sees an entry added or removed with redis-cli on the very next lookup', async () => {
    const { store, states } = storeFor()
    await cacheOn(store)
    assert.match(states.join('\n'), /^on: Redis reports changes of mx6:ip:allow, mx6:ip:green/m)
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:c1::/48', 'partner')
    await server.cli('CONFIG', 'RESETSTAT')
    assert.equal(store.cache.peer('2001:db8:c1::9', true), undefined, 'nothing cached before the first lookup')
    for (let i = 0; i < 5; i++) assert.deepEqual(await ask(store, '2001:db8:c1::9'), { ipAllow: { entry: '2001:db8:c1::/48', note: 'partner' } })
    assert.equal(await scriptCalls(server), 1, 'one script call, then four answers from the cache')
    assert.deepEqual(store.cache.peer('2001:db8:c1::9', true), { ipAllow: { entry: '2001:db8:c1::/48', note: 'partner' } }, 'the cached answer, without a round trip')
    assert.equal(store.cache.domainAllow(['other.test']), undefined, 'a domain never asked is not held')
    await server.cli('HDEL', 'mx6:ip:allow', '2001:db8:c1::/48')
    assert.equal(store.cache.peer('2001:db8:c1::9', true), undefined, 'emptied by the invalidation')
    assert.deepEqual(await ask(store, '2001:db8:c1::9'), { ipAllow: null, ipGreen: null }, 'removal seen at once')
    await server.cli('HSET', 'mx6:ip:green', '2001:db8:c1::9', 'green now')
    assert.deepEqual(await ask(store, '2001:db8:c1::9'), { ipAllow: null, ipGreen: { entry: '2001:db8:c1::9', note: 'green now' } }, 'addition to ip:green seen at once')
    assert.deepEqual(await ask(store, '2001:db8:c1::9'), { ipAllow: null, ipGreen: { entry: '2001:db8:c1::9', note: 'green now' } })
    assert.equal(await scriptCalls(server), 3, 'after each change one script call, then the cache again')
    // Another key under the prefix (another database, a FLUSHALL) also empties it.
    await server.cli('FLUSHALL')
    assert.deepEqual(await ask(store, '2001:db8:c1::9'), { ipAllow: null, ipGreen: null })
  })

  it('finds a repeat peer by its address alone (cache.peer) with the answers its candidates find, and loses it on a change', async () => {
    const { store } = storeFor()
    await cacheOn(store)
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:c2::/48', 'partner')
    const ip = '2001:db8:c2::9'
    assert.equal(store.cache.peer(ip, true), undefined, 'nothing cached before the first lookup')
    await ask(store, ip)
    assert.deepEqual(store.cache.peer(ip, true), { ipAllow: { entry: '2001:db8:c2::/48', note: 'partner' } })
    assert.deepEqual(store.cache.peer(ip, true), await ask(store, ip), 'what a lookup of its candidates answers')
    assert.equal(store.cache.peer(ip, false), undefined, 'an ip:allow-only call is another call: not cached yet')
    assert.equal(store.cache.peer('2001:db8:c2::a', true), undefined, 'another address of the same network is another peer')
    await store.lookup({ ipCandidates: candidatePrefixes(ip) })
    assert.deepEqual(store.cache.peer(ip, false), { ipAllow: { entry: '2001:db8:c2::/48', note: 'partner' } })
    await server.cli('HDEL', 'mx6:ip:allow', '2001:db8:c2::/48')
    assert.equal(store.cache.peer(ip, true), undefined, 'emptied by the invalidation')
    await server.cli('HSET', 'mx6:ip:green', '2001:db8:c2::/64', 'green')
    await ask(store, ip)
    assert.deepEqual(store.cache.peer(ip, true), { ipAllow: null, ipGreen: { entry: '2001:db8:c2::/64', note: 'green' } })
    assert.deepEqual(store.cache.peer(ip, true), await ask(store, ip))
  })

  it('domain:allow answers are cached the same way: a listed domain costs no command, a change with redis-cli is seen at once', async () => {
    const { store, states } = storeFor()
    await cacheOn(store)
    assert.match(states.join('\n'), /mx6:domain:allow/)
    await server.cli('HSET', 'mx6:domain:allow', 'partner.test', 'a partner')
    await server.cli('CONFIG', 'RESETSTAT')
    const hmgets = async () => Number(/^cmdstat_hmget:calls=(\d+)/m.exec(await server.cli('INFO', 'commandstats'))?.[1] ?? 0)
    const domain = { domainCandidates: ['mail.partner.test', 'partner.test', 'test'] }
    assert.equal(store.cache.domainAllow(domain.domainCandidates), undefined, 'nothing cached before the first lookup')
    for (let i = 0; i < 3; i++) assert.deepEqual(await store.lookup(domain), { domainAllow: { entry: 'partner.test', note: 'a partner' } })
    assert.equal(await hmgets(), 1, 'one HMGET, then the cache')
    assert.deepEqual(store.cache.domainAllow(domain.domainCandidates), { entry: 'partner.test', note: 'a partner' })
    // With a book in the same request, only the book is asked.
    const withBook = await store.lookup({ ...domain, books: [{ owner: 'bob@rcpt.test', members: ['ann@mail.partner.test'] }] })
    assert.deepEqual(withBook, { domainAllow: { entry: 'partner.test', note: 'a partner' }, books: [null] })
    assert.equal(await hmgets(), 1, 'domain:allow not asked again')
    await server.cli('HDEL', 'mx6:domain:allow', 'partner.test')
    assert.equal(store.cache.domainAllow(domain.domainCandidates), undefined, 'emptied by the invalidation')
    assert.deepEqual(await store.lookup(domain), { domainAllow: null }, 'removal seen at once')
    assert.equal(store.cache.domainAllow(domain.domainCandidates), null, 'a miss is cached too')
    await server.cli('HSET', 'mx6:domain:allow', 'test', 'the whole TLD')
    assert.deepEqual(await store.lookup(domain), { domainAllow: { entry: 'test', note: 'the whole TLD' } }, 'addition seen at once')
    assert.equal(await hmgets(), 3)
  })

  it('a killed invalidation connection switches the cache off at once; it comes back on with a new one, and changes are seen', async () => {
    const { store, states } = storeFor()
    await cacheOn(store)
    await ask(store, '2001:db8:c2::1')
    await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await cacheOn(store, false)
    assert.match(states.join('\n'), /off: the invalidation connection closed/)
    await cacheOn(store)
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:c2::/64', 'added after the reconnect')
    assert.deepEqual(await ask(store, '2001:db8:c2::1'), { ipAllow: { entry: '2001:db8:c2::/64', note: 'added after the reconnect' } })
  })

  it('a restarted Redis: off while it is away, on again when it is back, and nothing stale is served', async () => {
    const { store } = storeFor()
    await cacheOn(store)
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:c3::/64', 'before the restart')
    await ask(store, '2001:db8:c3::1')
    await server.stop()
    await cacheOn(store, false)
    await server.restart()
    // The restarted Redis keeps nothing on disk: the entry is gone.
    await cacheOn(store)
    assert.deepEqual(await ask(store, '2001:db8:c3::1'), { ipAllow: null, ipGreen: null })
  })

  it('an ACL user without the tracking commands works as before, without the cache, and the log says why once', async () => {
    await server.cli('ACL', 'SETUSER', 'plain', 'on', '>plain-pass', '~mx6:*', '+@read', '+@write', '+@scripting')
    const { store, states } = storeFor({ username: 'plain', password: 'plain-pass' })
    await poll(() => (states.length ? true : undefined), 5000, 'the reason')
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:c4::/64', 'partner')
    await server.cli('CONFIG', 'RESETSTAT')
    assert.deepEqual(await ask(store, '2001:db8:c4::1'), { ipAllow: { entry: '2001:db8:c4::/64', note: 'partner' } })
    assert.deepEqual(await ask(store, '2001:db8:c4::1'), { ipAllow: { entry: '2001:db8:c4::/64', note: 'partner' } })
    assert.equal(await scriptCalls(server), 2, 'every lookup goes to Redis')
    assert.equal(store.peerCacheOn, false)
    assert.equal(store.cache.peer('2001:db8:c4::1', true), undefined, 'an unconfirmed cache holds nothing')
    assert.equal(states.length, 1, states.join('\n'))
    assert.match(states[0], /^off: (cannot subscribe|CLIENT TRACKING refused).*NOPERM/)
  })
})
