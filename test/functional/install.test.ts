// `mx6ctl install` against a real `haraka -i` instance.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { run, runOk, tempDir } from '../support/proc'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const MX6CTL = path.join(ROOT, 'dist', 'scripts', 'mx6ctl.js')
const HARAKA = path.join(ROOT, 'node_modules', '.bin', 'haraka')
const PLUGINS = ['mx6-receive', 'mx6-send', 'mx6-learn']

/** Every file and symlink under `dir` (relative path -> content hash or link target). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      const rel = path.relative(dir, p)
      if (e.isSymbolicLink()) out[rel] = `-> ${fs.readlinkSync(p)}`
      else if (e.isDirectory()) {
        out[`${rel}/`] = 'dir'
        walk(p)
      } else out[rel] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')
    }
  }
  walk(dir)
  return out
}

async function freshInstance(prefix: string): Promise<string> {
  const dir = path.join(tempDir(prefix), 'haraka')
  await runOk(process.execPath, [HARAKA, '-i', dir])
  return dir
}

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

  it('installs self-contained folders: no symlinks, and loading a plugin reads no file outside the instance', async () => {
    for (const p of PLUGINS) {
      const links = Object.entries(snapshot(path.join(dir, 'plugins', p))).filter(([, v]) => v.startsWith('-> '))
      assert.deepEqual(links, [], p)
      // A fresh Node loads the folder the way Haraka does (require(<dir>)); every module it
      // reads must come from the instance, so moving or deleting the clone cannot break it.
      const script = `const d=${JSON.stringify(path.join(dir, 'plugins', p))};require(d);process.stdout.write('\\nLOADED '+JSON.stringify(Object.keys(require.cache))+'\\n')`
      // Dependencies log while loading (haraka-tld does, even afterwards): the list has its own line.
      const out = await runOk(process.execPath, ['-e', script], { cwd: path.dirname(dir), env: { PATH: process.env.PATH } })
      const loaded = JSON.parse(/^LOADED (.*)$/m.exec(out)![1]) as string[]
      assert.ok(loaded.length > 10, `${p}: ${loaded.length} modules`)
      const outside = loaded.filter((f) => !fs.realpathSync(f).startsWith(fs.realpathSync(dir) + path.sep))
      assert.deepEqual(outside, [], `${p} loads files from outside the instance`)
      assert.ok(loaded.some((f) => f.includes(`plugins/${p}/node_modules/ioredis/`)), `${p} uses its own ioredis`)
    }
  })

  it('refuses to replace a plugins/<name> folder it did not install', async () => {
    const inst = await freshInstance('install-foreign')
    fs.mkdirSync(path.join(inst, 'plugins', 'mx6-send'))
    fs.writeFileSync(path.join(inst, 'plugins', 'mx6-send', 'index.js'), '// mine\n')
    const r = await run(process.execPath, [MX6CTL, 'install', inst])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /plugins\/mx6-send exists and was not installed by mx6ctl/)
    assert.equal(fs.readFileSync(path.join(inst, 'plugins', 'mx6-send', 'index.js'), 'utf8'), '// mine\n')
  })

  it('uninstall removes exactly what install added and keeps the config; --purge removes the copied config too', async () => {
    const inst = await freshInstance('uninstall')
    const before = snapshot(inst)
    await runOk(process.execPath, [MX6CTL, 'install', inst])
    fs.appendFileSync(path.join(inst, 'config', 'plugins'), 'mx6-receive\n')
    const r = await run(process.execPath, [MX6CTL, 'uninstall', inst])
    assert.equal(r.code, 0, r.stderr)
    for (const p of PLUGINS) {
      assert.match(r.stdout, new RegExp(`plugins/${p}: removed`))
      assert.match(r.stdout, new RegExp(`config/${p}\\.ini: kept \\(--purge removes it\\)`))
    }
    assert.match(r.stdout, /Remove from .*config\/plugins .*: mx6-receive$/m)
    fs.writeFileSync(path.join(inst, 'config', 'plugins'), fs.readFileSync(path.join(inst, 'config', 'plugins'), 'utf8').replace('mx6-receive\n', ''))
    const kept = snapshot(inst)
    const added = Object.keys(kept).filter((k) => !(k in before)).sort()
    assert.deepEqual(added, [...PLUGINS.map((p) => `config/${p}.ini`), 'config/mx6.ini'].sort())
    for (const k of Object.keys(before)) assert.equal(kept[k], before[k], k)

    // Round trip with --purge: the instance is exactly as haraka -i left it.
    for (const p of PLUGINS) fs.rmSync(path.join(inst, 'config', `${p}.ini`))
    fs.rmSync(path.join(inst, 'config', 'mx6.ini'))
    await runOk(process.execPath, [MX6CTL, 'install', inst])
    // `haraka -c <dir> -h mx6-receive` finds the plugin's documentation.
    for (const p of PLUGINS) assert.ok(fs.existsSync(path.join(inst, 'docs', 'plugins', `${p}.md`)), p)
    const purged = await run(process.execPath, [MX6CTL, 'uninstall', '--purge', inst])
    assert.equal(purged.code, 0, purged.stderr)
    for (const p of PLUGINS) assert.match(purged.stdout, new RegExp(`config/${p}\\.ini: removed`))
    assert.match(purged.stdout, /config\/mx6\.ini: removed/)
    assert.deepEqual(snapshot(inst), before)
  })

  it('uninstall --purge keeps a config the operator had before install, and is harmless when nothing is installed', async () => {
    const inst = await freshInstance('uninstall-own')
    fs.writeFileSync(path.join(inst, 'config', 'mx6-receive.ini'), '[main]\nundecided=defer\n')
    await runOk(process.execPath, [MX6CTL, 'install', inst])
    await runOk(process.execPath, [MX6CTL, 'install', inst]) // a re-install must not forget which file was copied
    const r = await run(process.execPath, [MX6CTL, 'uninstall', '--purge', inst])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /config\/mx6-receive\.ini: kept \(it was not copied by mx6ctl install\)/)
    assert.match(r.stdout, /config\/mx6-send\.ini: removed/)
    assert.equal(fs.readFileSync(path.join(inst, 'config', 'mx6-receive.ini'), 'utf8'), '[main]\nundecided=defer\n')
    const again = await run(process.execPath, [MX6CTL, 'uninstall', inst])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /plugins\/mx6-send: not installed/)
    const usage = await run(process.execPath, [MX6CTL, 'uninstall'])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /expected exactly one <haraka-dir>/)
  })
})
