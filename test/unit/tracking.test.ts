// TrackedCache's bookkeeping against a scripted stand-in for two ioredis
// connections (the real protocol is exercised in test/functional/tracking.test.ts).
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import { INVALIDATE_CHANNEL, TrackedCache } from '../../plugins/lib/tracking'

class FakeConn extends EventEmitter {
  status = 'ready'
  calls: string[][] = []
  sub: FakeConn | null = null
  refuse: string | null = null
  duplicate(): FakeConn {
    this.sub = new FakeConn()
    return this.sub
  }
  async client(what: string): Promise<number> {
    assert.equal(what, 'ID')
    return 42
  }
  async subscribe(channel: string): Promise<number> {
    assert.equal(channel, INVALIDATE_CHANNEL)
    return 1
  }
  async call(...args: Array<string | number>): Promise<string> {
    this.calls.push(args.map(String))
    if (this.refuse && args[2] === 'ON') throw new Error(this.refuse)
    return 'OK'
  }
  disconnect(): void {
    this.status = 'end'
  }
}

const tick = () => new Promise((r) => setImmediate(r))

async function setup(now = () => 1000) {
  const main = new FakeConn()
  const states: string[] = []
  const cache = new TrackedCache<string>(main as unknown as Redis, ['mx6:ip:allow', 'mx6:ip:green'], { maxEntries: 2, maxAgeMs: 60000, now, onState: (on, why) => states.push(`${on ? 'on' : 'off'}: ${why}`) }).start()
  main.sub!.emit('ready')
  await tick()
  await tick()
  return { main, sub: main.sub!, cache, states }
}

describe('TrackedCache', () => {
  it('switches tracking on with the subscriber connection as the redirect, in broadcast mode, for the given prefixes', async () => {
    const { main, cache, states } = await setup()
    assert.deepEqual(main.calls, [
      ['CLIENT', 'TRACKING', 'OFF'],
      ['CLIENT', 'TRACKING', 'ON', 'REDIRECT', '42', 'BCAST', 'PREFIX', 'mx6:ip:allow', 'PREFIX', 'mx6:ip:green'],
    ])
    assert.equal(cache.enabled, true)
    assert.equal(states.length, 1)
    assert.match(states[0], /^on: /)
  })

  it('keeps an answer, and forgets everything on any invalidation message', async () => {
    const { sub, cache } = await setup()
    cache.set(cache.token(), 'a', 'answer a')
    assert.equal(cache.get('a'), 'answer a')
    sub.emit('message', INVALIDATE_CHANNEL, 'mx6:ip:allow')
    assert.equal(cache.get('a'), undefined)
    assert.equal(cache.size, 0)
  })

  it('drops an answer whose read was overtaken by an invalidation', async () => {
    const { sub, cache } = await setup()
    const token = cache.token()
    sub.emit('message', INVALIDATE_CHANNEL, '')
    cache.set(token, 'a', 'stale answer')
    assert.equal(cache.get('a'), undefined)
  })

  it('keeps nothing while tracking is off: before it is confirmed, after either connection closes, until it is on again', async () => {
    const main = new FakeConn()
    const cache = new TrackedCache<string>(main as unknown as Redis, ['p'], { maxEntries: 10, maxAgeMs: 60000 }).start()
    assert.equal(cache.token(), null, 'not on before the subscriber is ready')
    cache.set(cache.token(), 'a', 'x')
    assert.equal(cache.get('a'), undefined)
    main.sub!.emit('ready')
    await tick()
    await tick()
    cache.set(cache.token(), 'a', 'x')
    assert.equal(cache.get('a'), 'x')
    const token = cache.token()
    main.sub!.emit('close')
    assert.equal(cache.enabled, false)
    assert.equal(cache.get('a'), undefined)
    cache.set(token, 'b', 'y')
    assert.equal(cache.get('b'), undefined)
    main.sub!.emit('ready')
    await tick()
    await tick()
    assert.equal(cache.enabled, true)
    main.emit('close')
    assert.equal(cache.enabled, false)
    main.emit('ready')
    await tick()
    assert.equal(cache.enabled, true, 'on again after the main connection is back')
  })

  it('a refused CLIENT TRACKING (old Redis, ACL) leaves it off and says why once', async () => {
    const main = new FakeConn()
    main.refuse = "NOPERM this user has no permissions to run the 'client|tracking' command"
    const states: string[] = []
    const cache = new TrackedCache<string>(main as unknown as Redis, ['p'], { maxEntries: 10, maxAgeMs: 60000, onState: (on, why) => states.push(`${on}: ${why}`) }).start()
    main.sub!.emit('ready')
    await tick()
    await tick()
    main.emit('ready')
    await tick()
    assert.equal(cache.enabled, false)
    assert.deepEqual(states, ["false: CLIENT TRACKING refused: NOPERM this user has no permissions to run the 'client|tracking' command"])
  })

  it('is bounded in entries and in age', async () => {
    let now = 1000
    const { cache } = await setup(() => now)
    for (const k of ['a', 'b', 'c']) cache.set(cache.token(), k, k)
    assert.equal(cache.size, 2)
    assert.equal(cache.get('a'), undefined, 'the oldest went first')
    assert.equal(cache.get('c'), 'c')
    now += 60001
    assert.equal(cache.get('c'), undefined, 'too old')
  })
})
