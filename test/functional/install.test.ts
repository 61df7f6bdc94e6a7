// `mx6ctl install` against a real `haraka -i` instance.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { run, runOk, tempDir } from '../support/proc'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const MX6CTL = path.join(ROOT, 'dist', 'scripts', 'mx6ctl.js')
const HARAKA = path.join(ROOT, 'node_modules', '.bin', 'haraka')

describe('functional: mx6ctl install', function () {
  this.timeout(30000)
  let dir: string

  before(async () => {
    dir = path.join(tempDir('install'), 'haraka')
    await runOk(process.execPath, [HARAKA, '-i', dir])
  })
  after(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }))

  it('installs a folder plugin that loads with a plain require() and copies the default config', async () => {
    const r = await run(process.execPath, [MX6CTL, 'install', dir])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /plugins\/mx6-receive: installed/)
    assert.match(r.stdout, /plugins\/mx6-send: installed/)
    assert.match(r.stdout, /config\/mx6-send\.ini: copied default/)
    assert.match(r.stdout, /config\/mx6-receive\.ini: copied default/)
    assert.match(r.stdout, /spf\n\s+dkim\n\s+mx6-receive\n\s+rcpt_to\.in_host_list/)
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'plugins', 'mx6-receive', 'package.json'), 'utf8'))
    const mod = require(path.join(dir, 'plugins', 'mx6-receive', pkg.main))
    for (const fn of ['register', 'mx6_rcpt', 'mx6_data_post', 'shutdown']) assert.equal(typeof mod[fn], 'function', fn)
    const send = require(path.join(dir, 'plugins', 'mx6-send', 'dist', 'plugins', 'mx6-send', 'index.js'))
    for (const fn of ['register', 'mx6_get_mx', 'mx6_bounce', 'mx6_deferred']) assert.equal(typeof send[fn], 'function', fn)
    assert.equal(fs.readFileSync(path.join(dir, 'config', 'mx6-receive.ini'), 'utf8'), fs.readFileSync(path.join(ROOT, 'config', 'mx6-receive.ini'), 'utf8'))
  })

  it('is harmless to run twice and never overwrites the operator config', async () => {
    const ini = path.join(dir, 'config', 'mx6-receive.ini')
    fs.writeFileSync(ini, '[main]\nundecided=defer\n')
    const r = await run(process.execPath, [MX6CTL, 'install', dir])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /config\/mx6-receive\.ini: kept/)
    assert.equal(fs.readFileSync(ini, 'utf8'), '[main]\nundecided=defer\n')
    assert.ok(fs.existsSync(path.join(dir, 'plugins', 'mx6-receive', 'dist', 'plugins', 'mx6-receive', 'decide.js')))
  })

  it('refuses a directory that is not a Haraka instance, with a clear error', async () => {
    const empty = tempDir('not-haraka')
    const r = await run(process.execPath, [MX6CTL, 'install', empty])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /not a Haraka instance .*haraka -i/)
    assert.deepEqual(fs.readdirSync(empty), [])
    const missing = await run(process.execPath, [MX6CTL, 'install', path.join(empty, 'nope')])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /no such directory/)
  })

  it('prints usage for bad calls and help on --help', async () => {
    const none = await run(process.execPath, [MX6CTL, 'install'])
    assert.equal(none.code, 2)
    assert.match(none.stderr, /expected exactly one <haraka-dir>/)
    const help = await run(process.execPath, [MX6CTL, 'install', '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /^Usage: mx6ctl install <haraka-dir>/)
    const unknown = await run(process.execPath, [MX6CTL, 'frobnicate'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown command "frobnicate"/)
  })
})
