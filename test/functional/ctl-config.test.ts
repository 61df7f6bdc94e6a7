// mx6ctl config check, and mx6ctl with Redis settings that cannot be used (one shared
// setting in mx6.ini), against private real redis-servers.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { ctl, useCtlRedis } from '../support/ctl'
import { tempDir } from '../support/proc'

const SHIPPED = path.resolve(__dirname, '..', '..', '..', 'config')

function instance(files: Record<string, string>): string {
  const dir = tempDir('instance')
  fs.mkdirSync(path.join(dir, 'config'))
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'config', name), text)
  return dir
}

const shipped = (name: string) => fs.readFileSync(path.join(SHIPPED, name), 'utf8')

describe('functional: mx6ctl config check', function () {
  this.timeout(30000)

  it('an instance set up as README says: nothing to report', async () => {
    const dir = instance({ plugins: 'spf\ndkim\nclamd\nmx6-receive\nspamassassin\nrcpt_to.in_host_list\nmx6-learn\nqueue/smtp_forward\nmx6-send\n', 'mx6-receive.ini': shipped('mx6-receive.ini'), 'mx6-learn.ini': shipped('mx6-learn.ini'), 'mx6-send.ini': shipped('mx6-send.ini'), 'mx6.ini': shipped('mx6.ini') })
    const r = await ctl('config', 'check', dir)
    assert.equal(r.code, 0, r.out + r.err)
    assert.equal(r.out, 'nothing to report')
  })

  it('the plugin order, an unknown key, a bad value and keys new in this release, each on a line; --json', async () => {
    const dir = instance({ plugins: 'mx6-receive\nspf\nrcpt_to.in_host_list\n', 'mx6-receive.ini': '[main]\nskip-private=false\nstats_days=0\n' })
    const r = await ctl('config', 'check', dir)
    assert.equal(r.code, 1)
    const lines = r.out.split('\n')
    assert.ok(lines.includes('value: mx6-receive.ini [main] stats_days=0: expected a whole number from 1 to 3660; using the default 30'), r.out)
    assert.ok(lines.includes('unknown: mx6-receive.ini [main] skip-private: unknown key (did you mean skip_private?); ignored'), r.out)
    assert.ok(lines.some((l) => l.startsWith('order: spf is listed after mx6-receive')), r.out)
    assert.ok(lines.some((l) => l.startsWith('order: dkim is not in config/plugins while undecided=wait')), r.out)
    assert.ok(lines.includes('missing: mx6-receive.ini lacks [main] mode (documented in the shipped mx6-receive.ini; the default applies)'), r.out)
    const j = JSON.parse((await ctl('config', 'check', dir, '--json')).out) as { findings: Array<{ kind: string }> }
    assert.deepEqual([...new Set(j.findings.map((f) => f.kind))].sort(), ['missing', 'order', 'unknown', 'value'])
    assert.equal((await ctl('config', 'check')).code, 2)
  })
})

describe('functional: mx6ctl and Redis settings that cannot be used', function () {
  this.timeout(30000)
  const redis = useCtlRedis()
  const saved = process.env.MX6_REDIS_URL
  before(() => delete process.env.MX6_REDIS_URL)
  after(() => {
    if (saved !== undefined) process.env.MX6_REDIS_URL = saved
  })

  it('reads mx6.ini [redis]: the shared setting is where it writes', async () => {
    const dir = instance({ 'mx6.ini': `[redis]\nport=${redis.server.port}\n` })
    const r = await ctl('--config', dir, 'allow', 'ip', 'add', '2001:db8:1::/48', 'partner')
    assert.equal(r.code, 0, r.err)
    assert.equal(await redis.server.cli('HGET', 'mx6:ip:allow', '2001:db8:1::/48'), 'partner')
  })

  it('a malformed URL or a refused database: exit 1, one line, nothing written anywhere', async () => {
    await redis.server.cli('FLUSHALL')
    const bad = instance({ 'mx6.ini': `[redis]\nurl=redis//127.0.0.1:${redis.server.port}\n` })
    const r1 = await ctl('--config', bad, 'allow', 'ip', 'add', '2001:db8:2::/48')
    assert.equal(r1.code, 1)
    assert.match(r1.err, /redis settings invalid \(mx6\.ini \[redis\] url=redis\/\/127\.0\.0\.1:\d+: expected a redis:\/\/ or rediss:\/\/ URL\); nothing done/)
    const db = instance({ 'mx6.ini': `[redis]\nport=${redis.server.port}\ndb=99\n` })
    const r2 = await ctl('--config', db, 'allow', 'ip', 'add', '2001:db8:2::/48')
    assert.equal(r2.code, 1)
    assert.match(r2.err, /database 99 refused \(ERR DB index is out of range\); nothing done/)
    assert.equal(await redis.server.cli('DBSIZE'), '0', 'nothing written in database 0 either')
  })
})
