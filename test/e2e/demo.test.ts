// The README's first command: the demo really runs Haraka with the suite and a private Redis.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { freePort, requireTestbed, waitForPort } from '../support/net'
import { run } from '../support/proc'
import { RedisServer } from '../support/redis'

const DEMO = path.resolve(__dirname, '..', '..', 'scripts', 'demo.js')

describe('e2e: npm start (demo)', function () {
  this.timeout(60000)
  before(() => requireTestbed())

  it('self-test: IPv4 accepted, unknown IPv6 deferred, allow-listed IPv6 accepted, all cleaned up', async () => {
    const port = await freePort()
    const r = await run(process.execPath, [DEMO, '--self-test', '--port', String(port)], { timeoutMs: 45000 })
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /ok {3}IPv4 accepted: 250 /)
    assert.match(r.stdout, /ok {3}IPv6 unknown deferred: 451 4\.7\.26 /)
    assert.match(r.stdout, /ok {3}IPv6 allow-listed accepted: 250 /)
    // Nothing left behind: the private Redis is gone, so is the instance directory.
    const redisPort = Number(/^redis: redis:\/\/127\.0\.0\.1:(\d+)$/m.exec(r.stdout)?.[1])
    assert.ok(redisPort > 0, r.stdout)
    await assert.rejects(waitForPort('127.0.0.1', redisPort, 200))
    const workdir = /^workdir: (.+)$/m.exec(r.stdout)?.[1] ?? ''
    assert.ok(workdir.length > 0)
    assert.equal(fs.existsSync(workdir), false)
  })

  it('a dead Redis: says which and why, exits non-zero, keeps and names its work directory', async () => {
    const port = await freePort()
    const dead = `redis://127.0.0.1:${await freePort()}`
    const r = await run(process.execPath, [DEMO, '--self-test', '--port', String(port), '--redis', dead], { timeoutMs: 45000 })
    const workdir = /^demo: kept the work directory (\S+) \(Haraka's log: (\S+)\)$/m.exec(r.stderr)
    try {
      assert.notEqual(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stderr, new RegExp(`^demo: Redis at ${dead.replace(/[.]/g, '\\.')} does not answer: .*ECONNREFUSED`, 'm'))
      // Told before any check runs: no misleading "FAIL ... 451".
      assert.doesNotMatch(r.stdout, /FAIL/)
      assert.ok(workdir, r.stderr)
      assert.ok(fs.existsSync(workdir[2]), `${workdir[2]} is gone`)
      assert.equal(path.dirname(workdir[2]), workdir[1])
    } finally {
      if (workdir) fs.rmSync(workdir[1], { recursive: true, force: true })
    }
  })

  it("on a Redis it did not start, an existing mx6:ip:allow ::1 entry passes the self-test untouched, and nothing is left behind", async () => {
    const server = await RedisServer.start()
    try {
      await server.cli('HSET', 'mx6:ip:allow', '::1', "operator's own entry")
      const port = await freePort()
      const r = await run(process.execPath, [DEMO, '--self-test', '--port', String(port), '--redis', server.url], { timeoutMs: 45000 })
      assert.equal(r.code, 0, r.stdout + r.stderr)
      // Its own keys: the operator's entry does not make the unknown peer known.
      assert.match(r.stdout, /ok {3}IPv6 unknown deferred: 451 4\.7\.26 /)
      assert.match(r.stdout, /ok {3}IPv6 allow-listed accepted: 250 /)
      assert.match(r.stdout, /^keys: mx6demo:[0-9a-f]{8}:\* \(deleted now\)$/m)
      assert.equal(await server.cli('HGET', 'mx6:ip:allow', '::1'), "operator's own entry")
      assert.equal(await server.cli('KEYS', '*'), 'mx6:ip:allow')
      const workdir = /^workdir: (.+)$/m.exec(r.stdout)?.[1] ?? ''
      assert.ok(workdir.length > 0)
      assert.equal(fs.existsSync(workdir), false)
    } finally {
      await server.stop()
    }
  })

  it('refuses a bad option with usage', async () => {
    const r = await run(process.execPath, [DEMO, '--bogus'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /unknown option --bogus/)
  })
})
