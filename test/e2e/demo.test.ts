// The README's first command: the demo really runs Haraka with the suite and a private Redis.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { freePort, requireTestbed, waitForPort } from '../support/net'
import { run } from '../support/proc'

describe('e2e: npm start (demo)', function () {
  this.timeout(60000)
  before(() => requireTestbed())

  it('self-test: IPv4 accepted, unknown IPv6 deferred, allow-listed IPv6 accepted, all cleaned up', async () => {
    const port = await freePort()
    const r = await run(process.execPath, [path.resolve(__dirname, '..', '..', 'scripts', 'demo.js'), '--self-test', '--port', String(port)], { timeoutMs: 45000 })
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

  it('refuses a bad option with usage', async () => {
    const r = await run(process.execPath, [path.resolve(__dirname, '..', '..', 'scripts', 'demo.js'), '--bogus'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /unknown option --bogus/)
  })
})
