// The published packages say the truth: dependencies are what their compiled files require,
// Haraka is only a peer, and `engines` holds for every runtime dependency below them.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { packageClosure, pluginName, readPackage, workspaces, type PackageJson } from '../../scripts/pack'

const ROOT = path.resolve(__dirname, '..', '..', '..')
const root = readPackage(ROOT)

type Version = [number, number, number]

function parseVersion(v: string): Version {
  const [a = 0, b = 0, c = 0] = v.replace(/^v/, '').split('-')[0].split('.').map((x) => (/^\d+$/.test(x) ? Number(x) : 0))
  return [a, b, c]
}

function cmp(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]
}

/** Enough of semver's satisfies() for `engines.node` ranges: ||, comparators, ^, ~, x-ranges, a - b. */
function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version)
  return range.split('||').some((alt) => {
    const s = alt.trim()
    if (s === '' || s === '*') return true
    const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(s)
    if (hyphen) return cmp(v, parseVersion(hyphen[1])) >= 0 && cmp(v, parseVersion(hyphen[2])) <= 0
    return s
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .every((c) => {
        const m = /^(>=|<=|>|<|=|\^|~)?v?([\dxX*]+(?:\.[\dxX*]+){0,2})/.exec(c)
        if (!m) throw new Error(`unparsed range ${range}`)
        const parts = m[2].split('.')
        const fixed = parts.filter((p) => /^\d+$/.test(p)).length
        const base = parseVersion(m[2])
        const next = (n: number): Version => (n === 0 ? [base[0] + 1, 0, 0] : n === 1 ? [base[0], base[1] + 1, 0] : [base[0], base[1], base[2] + 1])
        switch (m[1]) {
          case '>=':
            return cmp(v, base) >= 0
          case '>':
            return fixed < 3 ? cmp(v, next(fixed - 1)) >= 0 : cmp(v, base) > 0
          case '<':
            return cmp(v, base) < 0
          case '<=':
            return fixed < 3 ? cmp(v, next(fixed - 1)) < 0 : cmp(v, base) <= 0
          case '^':
            return cmp(v, base) >= 0 && cmp(v, next(base[0] > 0 || fixed < 2 ? 0 : base[1] > 0 || fixed < 3 ? 1 : 2)) < 0
          case '~':
            return cmp(v, base) >= 0 && cmp(v, next(fixed < 2 ? 0 : 1)) < 0
          default:
            return fixed === 0 || (cmp(v, base) >= 0 && cmp(v, next(Math.min(fixed, 3) - 1)) < 0)
        }
      })
  })
}

/** Where each alternative of our engines.node starts, e.g. '^22.22.2 || >=26' -> 22.22.2, 26.0.0. */
function lowerBounds(range: string): string[] {
  return range.split('||').map((alt) => {
    const m = /^(?:>=|\^|~)\s*(\d+(?:\.\d+){0,2})$/.exec(alt.trim())
    assert.ok(m, `engines.node alternatives should be >=, ^ or ~ ranges: ${range}`)
    return parseVersion(m[1]).join('.')
  })
}

function findPackage(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const c = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(c, 'package.json'))) return fs.realpathSync(c)
    if (path.dirname(dir) === dir) return undefined
  }
}

/** name@version -> engines.node of every package a workspace pulls in at run time. */
function runtimeTree(wsDir: string): Map<string, string | undefined> {
  const seen = new Map<string, string | undefined>()
  const visit = (from: string, deps: Record<string, string> | undefined, optional: Record<string, string> | undefined): void => {
    for (const name of [...Object.keys(deps ?? {}), ...Object.keys(optional ?? {})]) {
      const dir = findPackage(name, from)
      if (!dir) {
        assert.ok(optional && name in optional, `${name} not installed (needed from ${from})`)
        continue
      }
      const pkg = readPackage(dir)
      const key = `${pkg.name}@${pkg.version}`
      if (seen.has(key)) continue
      seen.set(key, pkg.engines?.node)
      visit(dir, pkg.dependencies, pkg.optionalDependencies)
    }
  }
  const ws = readPackage(wsDir)
  visit(wsDir, ws.dependencies, ws.optionalDependencies)
  return seen
}

describe('packages', () => {
  const dirs = workspaces(ROOT)
  const pkgs: [string, PackageJson][] = dirs.map((d) => [d, readPackage(d)])

  it('are the three plugins and mx6ctl, in the root version', () => {
    assert.deepEqual(pkgs.map(([, p]) => p.name).sort(), ['haraka-mx6ctl', 'haraka-plugin-mx6-learn', 'haraka-plugin-mx6-receive', 'haraka-plugin-mx6-send'])
    for (const [dir, p] of pkgs) {
      assert.equal(p.version, root.version, p.name)
      assert.equal((p as { license?: string }).license, 'MIT', p.name)
      assert.ok(fs.existsSync(path.join(dir, 'LICENSE')) && fs.existsSync(path.join(dir, 'README.md')), p.name)
      assert.equal(p.engines?.node, root.engines?.node, p.name)
    }
  })

  it('list as dependencies exactly the packages their compiled files require, in the root ranges', () => {
    const rootRanges = { ...(root as { devDependencies?: Record<string, string> }).devDependencies, ...root.dependencies }
    for (const [dir, p] of pkgs) {
      const { modules } = packageClosure(dir)
      const own = pkgs.map(([, q]) => q.name)
      // mx6ctl also depends on the plugin packages: `mx6ctl install` copies them.
      const expected = pluginName(p) ? modules : [...modules, ...own.filter((n) => pluginName({ name: n }))]
      assert.deepEqual(Object.keys(p.dependencies ?? {}).sort(), [...expected].sort(), p.name)
      for (const [dep, range] of Object.entries(p.dependencies ?? {})) {
        assert.equal(range, own.includes(dep) ? root.version : rootRanges[dep], `${p.name}: ${dep}`)
      }
    }
  })

  it('keep Haraka a peer (optional: npm must not install a second Haraka) and never a dependency', () => {
    for (const [, p] of pkgs.filter(([, p]) => pluginName(p))) {
      assert.equal(p.dependencies?.Haraka, undefined, p.name)
      assert.equal(p.peerDependencies?.Haraka, '^3.3.4', p.name)
      assert.deepEqual((p as { peerDependenciesMeta?: unknown }).peerDependenciesMeta, { Haraka: { optional: true } }, p.name)
      assert.equal(p.main, `dist/plugins/${pluginName(p)}/index.js`)
      assert.deepEqual(p.files, ['dist/', 'config/'])
    }
  })

  it('engines.node holds for every runtime dependency (npm ci prints no EBADENGINE)', () => {
    const lows = lowerBounds(root.engines!.node)
    const bad: string[] = []
    for (const dir of dirs) {
      for (const [key, node] of runtimeTree(dir)) {
        for (const low of lows) if (node && !satisfies(low, node)) bad.push(`${key} wants node ${node}, not ${low}`)
      }
    }
    assert.deepEqual([...new Set(bad)], [], `our engines.node ${root.engines!.node} admits Node versions outside the engines of`)
  })

  it('satisfies() reads the usual engines ranges', () => {
    assert.ok(satisfies('20.0.0', '>=18'))
    assert.ok(!satisfies('20.0.0', '>=22'))
    assert.ok(!satisfies('20.0.0', '>=20.19'))
    assert.ok(satisfies('20.0.0', '^18 || ^20 || >=22'))
    assert.ok(!satisfies('20.0.0', '^18.17.0 || >=20.5.0'))
    assert.ok(satisfies('20.0.0', '>= 14.0.0'))
    assert.ok(satisfies('20.0.0', '>=10 <21'))
    assert.ok(satisfies('20.0.0', '20.x'))
    assert.ok(satisfies('20.0.0', '*'))
  })
})
