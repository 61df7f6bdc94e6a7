// The Redis list store against a private, real redis-server.
import assert from 'node:assert/strict'
import { Keys } from '../../plugins/lib/keys'
import { lintHash } from '../../plugins/lib/lint'
import { candidatePrefixes } from '../../plugins/lib/ip'
import { createRedis, REDIS_DEFAULTS } from '../../plugins/lib/redis'
import { markReturned, MAX_ATTEMPTS_PER_CALL, MAX_TRIMMED_PER_WRITE, RedisListStore, StoreReplyError, StoreTimeoutError, StoreUnavailableError, today, type AttemptRecord } from '../../plugins/lib/store'
import { poll } from '../support/proc'
import { RedisServer } from '../support/redis'

async function commandCalls(server: RedisServer): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const line of (await server.cli('INFO', 'commandstats')).split('\n')) {
    const m = /^cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/.exec(line.trim())
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

/** What the plugin hands recordAttempt: a builder of the record, counted in `built`. */
let built = 0
const rec = (envelopeHash: string, midHash: string | null, fields: Record<string, string>) => (): AttemptRecord => {
  built++
  return { envelopeHash, midHash, fields }
}

describe('functional: RedisListStore on a real redis-server', function () {
  this.timeout(20000)
  let server: RedisServer
  let store: RedisListStore
  let client: ReturnType<typeof createRedis>
  const keys = new Keys('mx6:')

  before(async () => {
    server = await RedisServer.start()
    client = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: 300 })
    store = new RedisListStore(client, keys, { timeoutMs: 300, statsDays: 30 })
    await poll(() => (client.status === 'ready' ? true : undefined), 5000, 'redis ready')
  })
  after(async () => {
    await store?.close()
    await server?.stop()
  })

  it('answers a whole phase with one script call for the CIDR lists, one HMGET per other list and one SMISMEMBER per book', async () => {
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:7::/48', 'partner')
    await server.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner domain')
    await server.cli('SADD', 'mx6:book:bob@rcpt.test', 'friend@other.test')
    await server.cli('CONFIG', 'RESETSTAT')
    const reply = await store.lookup({
      ipCandidates: candidatePrefixes('2001:db8:7::10'),
      domainCandidates: ['mail.allowed.test', 'allowed.test', 'test'],
      books: [{ owner: 'bob@rcpt.test', members: ['friend@other.test', '@other.test'] }, { owner: 'eve@rcpt.test', members: ['friend@other.test'] }],
    })
    assert.deepEqual(reply.ipAllow, { entry: '2001:db8:7::/48', note: 'partner' })
    assert.deepEqual(reply.domainAllow, { entry: 'allowed.test', note: 'partner domain' })
    assert.deepEqual(reply.books, ['friend@other.test', null])
    const calls = await commandCalls(server)
    // The script's own HMGET is counted too: one for ip:allow (inside the script), one for domain:allow.
    assert.equal((calls.evalsha ?? 0) + (calls.eval ?? 0), 1)
    assert.equal(calls.hmget, 2)
    assert.equal(calls.smismember, 2)
  })

  it('asks ip:allow and ip:green in one script call; ip:green only when ip:allow has no entry', async () => {
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:a1::/48', 'partner')
    await server.cli('HSET', 'mx6:ip:green', '2001:db8:a1::/64', 'green too')
    await server.cli('HSET', 'mx6:ip:green', '2001:db8:a2::5', 'green only')
    const ask = (ip: string) => store.lookup({ ipCandidates: candidatePrefixes(ip), ipGreenCandidates: candidatePrefixes(ip) })
    await server.cli('CONFIG', 'RESETSTAT')
    const both = await ask('2001:db8:a1::9')
    assert.deepEqual(both, { ipAllow: { entry: '2001:db8:a1::/48', note: 'partner' } })
    assert.ok(!('ipGreen' in both), 'ip:green is not looked at once ip:allow matched')
    assert.deepEqual(await ask('2001:db8:a2::5'), { ipAllow: null, ipGreen: { entry: '2001:db8:a2::5', note: 'green only' } })
    assert.deepEqual(await ask('2001:db8:a3::1'), { ipAllow: null, ipGreen: null })
    const calls = await commandCalls(server)
    assert.equal((calls.evalsha ?? 0) + (calls.eval ?? 0), 3, 'one script call per lookup')
    assert.equal(calls.hmget, 5, 'ip:allow, then ip:green only when ip:allow had nothing')
  })

  it('a CIDR list of the wrong type is a StoreReplyError (from inside the script)', async () => {
    await server.cli('SET', 'mx6:ip:green', 'not a hash')
    try {
      await assert.rejects(store.lookup({ ipCandidates: candidatePrefixes('2001:db8:a4::1'), ipGreenCandidates: candidatePrefixes('2001:db8:a4::1') }), (err: Error) => err instanceof StoreReplyError && /WRONGTYPE/.test(err.message))
    } finally {
      await server.cli('DEL', 'mx6:ip:green')
    }
  })

  it('sees an entry added with redis-cli on the very next lookup (no cache)', async () => {
    const req = { ipCandidates: candidatePrefixes('2001:db8:99::1') }
    assert.equal((await store.lookup(req)).ipAllow, null)
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:99::1', 'added by hand')
    assert.deepEqual((await store.lookup(req)).ipAllow, { entry: '2001:db8:99::1', note: 'added by hand' })
  })

  it('never matches a non-canonical entry, and lint reports it with the fix', async () => {
    await server.cli('HSET', 'mx6:ip:allow', '2001:DB8:55::/48', 'typed by hand')
    await server.cli('HSET', 'mx6:ip:allow', '2001:db8:56::1/48', 'host bits')
    await server.cli('HSET', 'mx6:domain:allow', 'Partner.TEST', '')
    assert.equal((await store.lookup({ ipCandidates: candidatePrefixes('2001:db8:55::1') })).ipAllow, null)
    const ipProblems = await lintHash(client, 'mx6:ip:allow', 'ip')
    assert.deepEqual(ipProblems.map((p) => [p.entry, p.fix]).sort(), [['2001:DB8:55::/48', '2001:db8:55::/48'], ['2001:db8:56::1/48', '2001:db8:56::/48']])
    const domProblems = await lintHash(client, 'mx6:domain:allow', 'domain')
    assert.deepEqual(domProblems.map((p) => [p.entry, p.fix]), [['Partner.TEST', 'partner.test']])
  })

  it('a key of the wrong type is a StoreReplyError, and lint says so', async () => {
    await server.cli('SET', 'mx6:book:wrong@rcpt.test', 'not a set')
    await assert.rejects(store.lookup({ books: [{ owner: 'wrong@rcpt.test', members: ['a@b.test'] }] }), StoreReplyError)
    await server.cli('SET', 'mx6:domain:allow2', 'x')
    const p = await lintHash(client, 'mx6:domain:allow2', 'domain')
    assert.match(p[0].problem, /not a hash/)
  })

  it('records deferred attempts, those of one event-loop turn in one script call: in order (first time kept on a retry), TTLs set, the index bounded', async () => {
    const t = 1_800_000_000
    const fields = (time: number, phase: string) => ({ time: String(time), phase, verdict: 'defer', mailFrom: 'a@x.test' })
    // ioredis checks once per connection that the script is loaded: done before counting.
    store.recordAttempt(rec('env0', null, fields(t - 1000, 'rcpt')), 3600, 2)
    await poll(async () => ((await server.cli('EXISTS', keys.attempt('env0'))).trim() === '1' ? true : undefined), 3000, 'warm-up record')
    await server.cli('CONFIG', 'RESETSTAT')
    // Count what the client writes to its socket: the four records of one turn go out together.
    const stream = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream
    const write = stream.write
    let writes = 0
    stream.write = function (this: unknown, ...a: unknown[]) {
      writes++
      return write.apply(this, a)
    }
    built = 0
    store.recordAttempt(rec('env1', 'mid1', fields(t, 'rcpt')), 3600, 3)
    store.recordAttempt(rec('env1', null, fields(t + 60, 'data_post')), 3600, 3)
    store.recordAttempt(rec('env2', null, fields(t + 1, 'rcpt')), 3600, 3)
    store.recordAttempt(rec('env3', null, fields(t + 2, 'rcpt')), 3600, 3)
    assert.equal(writes, 0, 'nothing sent before the end of the turn')
    assert.equal(built, 0, 'nor built: the records are made when their batch is written, not by the caller (the hook)')
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    stream.write = write
    assert.equal(writes, 1, 'one write for the four records of one turn')
    assert.equal(built, 4, 'each built once, when its batch was written')
    await poll(async () => ((await server.cli('ZCARD', keys.attempts)).trim() === '3' ? true : undefined), 3000, 'index trimmed to 3')
    const calls = await commandCalls(server)
    assert.equal((calls.evalsha ?? 0) + (calls.eval ?? 0), 1, 'the four records of one turn in one script call')
    assert.equal(calls.zadd, 5, 'each record indexed, and the Message-ID of the one that has one')
    assert.equal((await server.cli('HGET', keys.attempt('env1'), 'time')).trim(), String(t), 'the first deferral time is kept')
    assert.equal((await server.cli('HGET', keys.attempt('env1'), 'phase')).trim(), 'data_post', 'the rest is the latest')
    assert.ok(Number(await server.cli('TTL', keys.attempt('env1'))) > 3500)
    assert.equal((await server.cli('GET', keys.attemptByMessageId('mid1'))).trim(), 'env1')
    assert.ok(Number(await server.cli('TTL', keys.attemptByMessageId('mid1'))) > 3500)
    assert.deepEqual((await server.cli('ZRANGE', keys.attempts, '0', '-1')).trim().split('\n'), ['env1', 'env2', 'env3'], 'the oldest dropped first')
    assert.equal((await server.cli('EXISTS', keys.attempt('env0'))).trim(), '0', 'with its attempt hash')
  })

  it('holds at most max_entries attempts and Message-IDs in Redis: what leaves an index (too old, or too many) is deleted with it', async () => {
    const own = new Keys('bound:')
    const bounded = new RedisListStore(client, own, { timeoutMs: 300, statsDays: 30 })
    const t = 1_800_000_000
    const fields = (time: number) => ({ time: String(time), phase: 'data_post', verdict: 'defer' })
    const fpKeys = async () => (await server.cli('KEYS', 'bound:fp:*')).trim().split('\n').filter(Boolean).sort()
    // 30 deferrals, each its own envelope and Message-ID, at most 5 kept: 5 of each, the latest.
    for (let i = 0; i < 30; i++) bounded.recordAttempt(rec(`e${i}`, `m${i}`, fields(t + i)), 3600, 5)
    await poll(async () => ((await server.cli('ZCARD', own.attempts)).trim() === '5' ? true : undefined), 3000, 'index trimmed to 5')
    const latest = [25, 26, 27, 28, 29]
    const expected = [own.attempts, own.attemptMessageIds, ...latest.map((i) => own.attempt(`e${i}`)), ...latest.map((i) => own.attemptByMessageId(`m${i}`))].sort()
    assert.deepEqual(await fpKeys(), expected)
    assert.deepEqual((await server.cli('ZRANGE', own.attemptMessageIds, '0', '-1')).trim().split('\n'), latest.map((i) => `m${i}`))
    // A retry of a kept Message-ID moves it to the newest; a later record pushes the oldest out.
    bounded.recordAttempt(rec('e25', 'm25', fields(t + 40)), 3600, 5)
    bounded.recordAttempt(rec('e40', 'm40', fields(t + 41)), 3600, 5)
    await poll(async () => (/m40/.test(await server.cli('ZRANGE', own.attemptMessageIds, '0', '-1')) ? true : undefined), 3000, 'm40 recorded')
    assert.deepEqual((await server.cli('ZRANGE', own.attemptMessageIds, '0', '-1')).trim().split('\n'), ['m27', 'm28', 'm29', 'm25', 'm40'])
    assert.equal((await server.cli('EXISTS', own.attemptByMessageId('m26'))).trim(), '0', 'the Message-ID key of the one pushed out is gone')
    assert.equal((await server.cli('EXISTS', own.attemptByMessageId('m25'))).trim(), '1')
    // The envelope index keeps first deferrals (e25 stays the oldest): e25 goes, its hash too.
    assert.deepEqual((await server.cli('ZRANGE', own.attempts, '0', '-1')).trim().split('\n'), ['e26', 'e27', 'e28', 'e29', 'e40'])
    assert.equal((await server.cli('EXISTS', own.attempt('e25'))).trim(), '0')
    // Older than the TTL (from the latest record written): gone, keys and all, whatever the bound.
    bounded.recordAttempt(rec('late', 'mlate', fields(t + 41 + 3600)), 3600, 5)
    await poll(async () => ((await server.cli('ZCARD', own.attempts)).trim() === '1' ? true : undefined), 3000, 'aged out')
    assert.deepEqual(await fpKeys(), [own.attempts, own.attemptMessageIds, own.attempt('late'), own.attemptByMessageId('mlate')].sort())
  })

  it('marks an attempt as come back only while it is there: a trimmed or expired one is not made again', async () => {
    const key = new Keys('mark:').attempt('gone')
    assert.equal(await markReturned(client, key, 1_800_000_100, '192.0.2.1'), false)
    assert.equal((await server.cli('EXISTS', key)).trim(), '0', 'no hash without a TTL')
    await server.cli('HSET', key, 'time', '1800000000')
    await server.cli('EXPIRE', key, '3600')
    assert.equal(await markReturned(client, key, 1_800_000_100, '192.0.2.1'), true)
    assert.equal((await server.cli('HMGET', key, 'returned', 'returned_from')).trim(), '1800000100\n192.0.2.1')
    assert.ok(Number(await server.cli('TTL', key)) > 3500, 'its TTL kept')
  })

  it('a lowered max_entries is reached over the next writes, at most MAX_TRIMMED_PER_WRITE entries leaving an index per write', async () => {
    const own = new Keys('lower:')
    const store2 = new RedisListStore(client, own, { timeoutMs: 300, statsDays: 30 })
    const t = 1_800_000_000
    const n = MAX_TRIMMED_PER_WRITE + 200
    // n attempts written under a large bound, each with its hash.
    const pipe = client.pipeline()
    for (let i = 0; i < n; i++) pipe.zadd(own.attempts, t + i, `o${i}`).hset(own.attempt(`o${i}`), 'time', String(t + i))
    await pipe.exec()
    const written = async () => Number(await server.cli('ZCARD', own.attempts))
    store2.recordAttempt(rec('new1', null, { time: String(t + n) }), 3600, 100)
    await poll(async () => ((await written()) === n + 1 - MAX_TRIMMED_PER_WRITE ? true : undefined), 3000, 'first trim')
    assert.equal((await server.cli('EXISTS', own.attempt('o0'), own.attempt(`o${MAX_TRIMMED_PER_WRITE - 1}`))).trim(), '0')
    assert.equal((await server.cli('EXISTS', own.attempt(`o${MAX_TRIMMED_PER_WRITE}`))).trim(), '1', 'not past the per-write bound')
    store2.recordAttempt(rec('new2', null, { time: String(t + n + 1) }), 3600, 100)
    await poll(async () => ((await written()) === 100 ? true : undefined), 3000, 'bound reached')
    assert.equal(Number(await server.cli('EVAL', "return #redis.call('KEYS', 'lower:fp:env:*')", '0')), 100, 'as many attempt hashes as index entries')
    // The bound counts what leaves an index too old and too many together: 600 aged out
    // and 400 of the oldest past the bound, 1,000 in all.
    const aged = new Keys('aged:')
    const store3 = new RedisListStore(client, aged, { timeoutMs: 300, statsDays: 30 })
    const pipe2 = client.pipeline()
    for (let i = 0; i < n; i++) pipe2.zadd(aged.attempts, i < 600 ? t - 7200 + i : t + i, `a${i}`)
    await pipe2.exec()
    store3.recordAttempt(rec('new3', null, { time: String(t + n) }), 3600, 100)
    await poll(async () => (Number(await server.cli('ZCARD', aged.attempts)) < n + 1 ? true : undefined), 3000, 'aged trim')
    assert.equal(Number(await server.cli('ZCARD', aged.attempts)), n + 1 - MAX_TRIMMED_PER_WRITE)
    assert.equal((await server.cli('ZRANGE', aged.attempts, '0', '0')).trim(), 'a1000', 'the 600 aged out, then the 400 oldest')
  })

  it('a record whose builder throws is left out and reported; the others of its batch are written', async () => {
    const errors: string[] = []
    const own = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: 300 })
    const other = new RedisListStore(own, keys, { timeoutMs: 300, statsDays: 30, onWriteError: (what, err) => errors.push(`${what}: ${err.message}`) })
    await poll(() => (own.status === 'ready' ? true : undefined), 5000, 'redis ready')
    try {
      other.recordAttempt(() => {
        throw new Error('broken record')
      }, 3600, 100000)
      other.recordAttempt(rec('kept', null, { time: '1800000000', phase: 'rcpt', verdict: 'defer' }), 3600, 100000)
      await poll(async () => ((await server.cli('EXISTS', keys.attempt('kept'))).trim() === '1' ? true : undefined), 3000, 'the other record of the batch')
      assert.deepEqual(errors, ['follow-up record: broken record'])
    } finally {
      await other.close()
    }
  })

  it('counters that cannot be written are reported as counters (a follow-up record as such: see the builder test above)', async () => {
    const errors: string[] = []
    const own = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: 300 })
    const other = new RedisListStore(own, keys, { timeoutMs: 300, statsDays: 30, flushMs: 60000, onWriteError: (what, err) => errors.push(`${what}: ${err.message}`) })
    await poll(() => (own.status === 'ready' ? true : undefined), 5000, 'redis ready')
    try {
      other.count(['rcpt.defer.none', 'rcpt.pending.none'])
      own.disconnect()
      await poll(() => (own.status === 'end' ? true : undefined), 3000, 'client closed')
      await other.flush()
      assert.deepEqual(errors, ['counters: redis not connected; 2 counters dropped'])
    } finally {
      await other.close()
    }
  })

  it('with a write window: the first record after a quiet spell goes out at once, the next ones wait for the window and go out together; a full batch goes at once', async () => {
    // Its own client: close() disconnects it.
    const own = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: 300 })
    const windowed = new RedisListStore(own, keys, { timeoutMs: 300, statsDays: 30, attemptWriteMs: 1000 })
    await poll(() => (own.status === 'ready' ? true : undefined), 5000, 'redis ready')
    const t = 1_800_000_000
    const fields = (time: number) => ({ time: String(time), phase: 'rcpt', verdict: 'defer', mailFrom: 'a@x.test' })
    const has = async (env: string): Promise<boolean> => (await server.cli('EXISTS', keys.attempt(env))).trim() === '1'
    const turn = () => new Promise((r) => setImmediate(r))
    try {
      await server.cli('CONFIG', 'RESETSTAT')
      windowed.recordAttempt(rec('w0', null, fields(t)), 3600, 100000)
      await poll(async () => ((await has('w0')) ? true : undefined), 300, 'the first record, written at the end of its turn')
      const sent = Date.now()
      windowed.recordAttempt(rec('w1', null, fields(t + 1)), 3600, 100000)
      await turn()
      windowed.recordAttempt(rec('w2', null, fields(t + 2)), 3600, 100000)
      await turn()
      await new Promise((r) => setTimeout(r, 150))
      assert.deepEqual([await has('w1'), await has('w2')], [false, false], 'within the window, nothing more is written')
      await poll(async () => ((await has('w1')) && (await has('w2')) ? true : undefined), 3000, 'the window\'s records')
      assert.ok(Date.now() - sent >= 950, `written when the window ended (${Date.now() - sent} ms)`)
      const calls = await commandCalls(server)
      assert.equal((calls.evalsha ?? 0) + (calls.eval ?? 0), 2, 'one script call for the first record, one for the two of the window')
      // Within the window again: a batch that reaches the bound is sent at once.
      for (let i = 0; i < MAX_ATTEMPTS_PER_CALL; i++) windowed.recordAttempt(rec(`b${i}`, null, fields(t + 10)), 3600, 100000)
      await poll(async () => ((await has(`b${MAX_ATTEMPTS_PER_CALL - 1}`)) ? true : undefined), 300, 'the full batch, before the window ends')
      const after = await commandCalls(server)
      assert.equal((after.evalsha ?? 0) + (after.eval ?? 0), 3, 'the full batch in one call')
    } finally {
      await windowed.close()
    }
  })

  it('keeps per-day counters with a TTL', async () => {
    store.count(['rcpt.defer.none', 'rcpt.defer.none', 'rcpt.trusted.ip:allow'])
    const key = keys.stats(today())
    const got = await poll(async () => {
      const v = await server.cli('HGET', key, 'rcpt.defer.none')
      return v === '2' ? v : undefined
    }, 3000, 'counter')
    assert.equal(got, '2')
    const ttl = Number(await server.cli('TTL', key))
    assert.ok(ttl > 29 * 86400 && ttl <= 30 * 86400, `ttl ${ttl}`)
  })

  it('times out within the bound when Redis stalls (CLIENT PAUSE)', async () => {
    await server.cli('CLIENT', 'PAUSE', '1500', 'ALL')
    const t0 = Date.now()
    await assert.rejects(store.lookup({ ipCandidates: candidatePrefixes('2001:db8:7::10') }), StoreTimeoutError)
    const took = Date.now() - t0
    assert.ok(took < 1200, `took ${took} ms, bound 300 ms`)
    await poll(async () => ((await store.lookup({ domainCandidates: ['x.test'] }).catch(() => null)) ? true : undefined), 5000, 'unpaused')
  })

  it('a client whose own command timeout is longer than the bound (or unset): the store still times out within its bound', async () => {
    for (const timeoutMs of [5000, undefined]) {
      const own = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: 5000 }, { commandTimeout: timeoutMs })
      const bounded = new RedisListStore(own, keys, { timeoutMs: 300, statsDays: 30 })
      try {
        await poll(() => (own.status === 'ready' ? true : undefined), 5000, 'redis ready')
        await server.cli('CLIENT', 'PAUSE', '1500', 'ALL')
        const t0 = Date.now()
        await assert.rejects(bounded.lookup({ ipCandidates: candidatePrefixes('2001:db8:7::11') }), StoreTimeoutError)
        const took = Date.now() - t0
        assert.ok(took < 1200, `client timeout ${timeoutMs || 'unset'}: took ${took} ms, bound 300 ms`)
        await server.cli('CLIENT', 'UNPAUSE')
      } finally {
        await bounded.close()
      }
    }
  })

  it('a client that times out each command itself within the bound: the store starts no timer of its own for a Redis call; otherwise it does', async () => {
    for (const [clientMs, timers] of [[250, 0], [5000, 1]] as const) {
      const own = createRedis({ ...REDIS_DEFAULTS, port: server.port, timeoutMs: clientMs })
      const store2 = new RedisListStore(own, keys, { timeoutMs: 300, statsDays: 30 })
      const real = globalThis.setTimeout
      let ours = 0
      try {
        await poll(() => (own.status === 'ready' ? true : undefined), 5000, 'redis ready')
        // The store's bound is the only timer of 300 ms (the client's own is 250 or 5000 ms).
        globalThis.setTimeout = ((fn: () => void, ms?: number) => (ms === 300 && ours++, real(fn, ms))) as typeof setTimeout
        await store2.lookup({ ipCandidates: candidatePrefixes('2001:db8:7::12') })
        await store2.spfGuess('nospf.test')
        globalThis.setTimeout = real
        assert.equal(ours, 2 * timers, `client timeout ${clientMs} ms: ${ours} timers of the store for two calls`)
      } finally {
        globalThis.setTimeout = real
        await store2.close()
      }
    }
  })

  it('fails fast while Redis is down and recovers by itself when it returns', async () => {
    await server.stop()
    await poll(() => (client.status !== 'ready' ? true : undefined), 5000, 'client notices')
    const t0 = Date.now()
    await assert.rejects(store.lookup({ domainCandidates: ['x.test'] }), StoreUnavailableError)
    assert.ok(Date.now() - t0 < 100, 'no waiting while down')
    await server.restart()
    await server.cli('HSET', 'mx6:domain:allow', 'back.test', '')
    const reply = await poll(async () => (await store.lookup({ domainCandidates: ['back.test'] }).catch(() => undefined)) ?? undefined, 10000, 'recovery')
    assert.deepEqual(reply.domainAllow, { entry: 'back.test', note: '' })
  })
})
