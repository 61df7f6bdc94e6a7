// The packages the Haraka way: `npm pack` every workspace, `npm install --offline` the plugin
// tarballs into a fresh `haraka -i` instance, list the plugins by name in config/plugins and
// send mail to that Haraka in the test namespace.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { HarakaServer } from '../support/haraka'
import { requireTestbed } from '../support/net'
import { runOk, tempDir } from '../support/proc'
import { V4MX, V6MX } from '../support/receiver'
import { RedisServer } from '../support/redis'
import { smtpSession, type SessionResult } from '../support/smtp'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const PLUGINS = ['mx6-receive', 'mx6-send', 'mx6-learn']
// npm must not reach the network: everything comes from the npm cache `npm ci` filled.
const NPM_OFFLINE = ['--offline', '--no-audit', '--no-fund', '--loglevel=error']

interface Tarball {
  file: string
  /** Paths inside the tarball, without the leading package/. */
  entries: string[]
}

async function packAll(dest: string): Promise<Record<string, Tarball>> {
  await runOk('npm', ['pack', '--workspaces', '--pack-destination', dest, ...NPM_OFFLINE], { cwd: ROOT, timeoutMs: 120000 })
  const out: Record<string, Tarball> = {}
  for (const f of fs.readdirSync(dest).filter((f) => f.endsWith('.tgz'))) {
    const entries = (await runOk('tar', ['-tzf', path.join(dest, f)])).split('\n').filter(Boolean).map((e) => e.replace(/^package\//, ''))
    out[f.replace(/-\d+\.\d+\.\d+\.tgz$/, '')] = { file: path.join(dest, f), entries }
  }
  return out
}

type LockEntry = { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; dev?: boolean; optional?: boolean }

/**
 * A package-lock.json for the instance with the plugins' runtime dependencies as the root
 * lockfile has them: npm then takes them from the cache by integrity. Without it npm needs
 * the registry's package documents, which `npm ci` does not cache.
 */
function seedLock(dir: string): void {
  const rootLock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const picked: Record<string, LockEntry> = {}
  const visit = (from: string, deps: Record<string, string>): void => {
    for (const name of Object.keys(deps)) {
      let at: string | undefined
      for (let loc = from; ; loc = loc.includes('/node_modules/') ? loc.slice(0, loc.lastIndexOf('/node_modules/')) : '') {
        const candidate = `${loc ? `${loc}/` : ''}node_modules/${name}`
        if (rootLock.packages[candidate]) {
          at = candidate
          break
        }
        if (!loc) break
      }
      if (!at) continue // an optional dependency this platform does not have
      const key = at.replace(/^plugins\/[^/]+\//, '')
      if (picked[key]) continue
      const { dev: _dev, ...entry } = rootLock.packages[at]
      picked[key] = entry
      visit(at, { ...entry.dependencies, ...entry.optionalDependencies })
    }
  }
  for (const p of PLUGINS) visit(`plugins/${p}`, rootLock.packages[`plugins/${p}`].dependencies ?? {})
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; version: string }
  const lock = { name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages: { '': { name: pkg.name, version: pkg.version }, ...picked } }
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2))
}

function mail(peer: string): Promise<SessionResult> {
  return smtpSession({
    host: peer.includes(':') ? V6MX : V4MX,
    port: 25,
    localAddress: peer,
    ehlo: 'client.other.test',
    mailFrom: 'someone@neutral.test',
    rcptTo: ['bob@rcpt.test'],
    data: ['From: someone@neutral.test', 'To: bob@rcpt.test', `Subject: from ${peer}`, `Message-ID: <pkg.${Date.now()}@test>`, '', 'Hello.', ''].join('\r\n'),
  })
}

describe('e2e: the npm packages installed into a fresh Haraka', function () {
  this.timeout(240000)
  let tarballs: Record<string, Tarball>
  let redis: RedisServer
  let haraka: HarakaServer

  before(async () => {
    requireTestbed()
    tarballs = await packAll(tempDir('packs'))
    redis = await RedisServer.start()
    const redisIni = `[redis]\nport=${redis.port}\ntimeout=300\n`
    haraka = await HarakaServer.start({
      listen: [`[${V6MX}]:25`, `${V4MX}:25`],
      plugins: ['mx6-receive', 'rcpt_to.in_host_list', 'mx6-learn', 'queue-capture', 'mx6-send'],
      // Only the shared [redis] (config/mx6.ini): everything else comes from the ini each
      // package ships in its config/.
      config: { 'mx6.ini': redisIni },
      install: async (dir) => {
        const files = PLUGINS.map((p) => tarballs[`haraka-plugin-${p}`].file)
        seedLock(dir)
        await runOk('npm', ['install', ...NPM_OFFLINE, ...files], { cwd: dir, timeoutMs: 120000 })
      },
    })
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::100/120', 'partner relay')
  })
  after(async () => {
    await haraka?.stop()
    await redis?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && haraka) console.log(haraka.log().slice(-6000))
  })

  it('packs one tarball per workspace: compiled code, its README, LICENSE and ini, no tests, fixtures or keys', () => {
    assert.deepEqual(Object.keys(tarballs).sort(), ['haraka-mx6ctl', ...PLUGINS.map((p) => `haraka-plugin-${p}`)].sort())
    for (const [name, t] of Object.entries(tarballs)) {
      for (const e of t.entries) {
        assert.ok(/^(package\.json|README\.md|LICENSE|dist\/.+\.js|config\/mx6(-[a-z]+)?\.ini)$/.test(e), `${name}: unexpected ${e}`)
        assert.doesNotMatch(e, /(^|\/)(test|fixtures|bench)\/|\.(key|pem|ts|map)$/, `${name}: ${e}`)
      }
      for (const f of ['package.json', 'README.md', 'LICENSE']) assert.ok(t.entries.includes(f), `${name} lacks ${f}`)
    }
    for (const p of PLUGINS) {
      const t = tarballs[`haraka-plugin-${p}`].entries
      assert.ok(t.includes(`dist/plugins/${p}/index.js`), p)
      assert.ok(t.includes(`config/${p}.ini`), p)
      assert.ok(t.some((e) => e.startsWith('dist/plugins/lib/')), `${p} carries the shared code`)
      assert.ok(!t.some((e) => e.startsWith('dist/scripts/')), `${p} carries no mx6ctl`)
    }
    assert.ok(tarballs['haraka-mx6ctl'].entries.includes('dist/scripts/mx6ctl.js'))
  })

  it('Haraka loads the plugins by name from node_modules/haraka-plugin-*, with the shipped ini as defaults', () => {
    for (const p of PLUGINS) {
      assert.ok(fs.existsSync(path.join(haraka.dir, 'node_modules', `haraka-plugin-${p}`, 'config', `${p}.ini`)), p)
      assert.ok(!fs.existsSync(path.join(haraka.dir, 'plugins', p)), `no folder plugin ${p}`)
    }
    // The peer dependency is optional: npm does not put a second Haraka into the instance.
    assert.ok(!fs.existsSync(path.join(haraka.dir, 'node_modules', 'Haraka')))
    assert.doesNotMatch(haraka.log(), /Loading plugin .* failed|compiling .* failed/)
  })

  it('defers an unknown IPv6 peer with 451', async () => {
    const r = await mail('2001:db8:7::20')
    assert.equal(r.rcpt[0].code, 250)
    assert.equal(r.dataEnd?.code, 451)
    assert.match(r.dataEnd!.lines[0], /^451.4\.7\.26 /)
  })

  it('accepts an allow-listed IPv6 peer', async () => {
    const before = haraka.captured().length
    const r = await mail('2001:db8:7::1a0')
    assert.equal(r.dataEnd?.code, 250)
    const got = (await haraka.waitForCaptured(before + 1)).at(-1)!
    assert.equal((got.meta.results?.['mx6-receive'] as Record<string, unknown>).rule, 'ip:allow')
  })

  it('leaves IPv4 untouched', async () => {
    const before = haraka.captured().length
    const r = await mail('192.0.2.10')
    assert.equal(r.dataEnd?.code, 250)
    const got = (await haraka.waitForCaptured(before + 1)).at(-1)!
    assert.equal(got.meta.remote_ip, '192.0.2.10')
    assert.equal(got.meta.results?.['mx6-receive'], undefined)
  })
})
