// The published packages (plugins/mx6-* and cli/) and what goes into them.
//
// The plugins import shared code relatively ('../lib/...', mx6-learn also '../mx6-receive/...'),
// so each package carries the compiled files its entry point reaches, in the same layout
// under its own dist/: no shared package to version in lockstep, and a package never loads
// another package's copy of lib. In the clone a workspace's dist/ is a symlink to the root
// dist/ (one module instance for tests); `npm pack` (prepack) swaps in a real copy and
// postpack puts the symlink back.
import fs from 'node:fs'
import { builtinModules } from 'node:module'
import path from 'node:path'

export interface PackageJson {
  name: string
  version?: string
  main?: string
  bin?: Record<string, string>
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  engines?: Record<string, string>
  files?: string[]
  workspaces?: string[]
}

/** The repository root: dist/scripts/pack.js -> ../.. */
export function repoRoot(): string {
  return path.resolve(__dirname, '..', '..')
}

export function readPackage(dir: string): PackageJson {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson
}

/** Workspace directories of the root package.json. */
export function workspaces(root = repoRoot()): string[] {
  return (readPackage(root).workspaces ?? []).map((w) => path.join(root, w))
}

/** 'haraka-plugin-mx6-receive' -> 'mx6-receive'; undefined for a package that is no plugin. */
export function pluginName(pkg: PackageJson): string | undefined {
  return pkg.name.startsWith('haraka-plugin-') ? pkg.name.slice('haraka-plugin-'.length) : undefined
}

/** Entry points relative to dist/: main and bin targets. */
function entries(pkg: PackageJson): string[] {
  const all = [pkg.main, ...Object.values(pkg.bin ?? {})].filter((e): e is string => !!e)
  return all.map((e) => {
    const rel = path.posix.normalize(e)
    if (!rel.startsWith('dist/')) throw new Error(`${pkg.name}: entry ${e} is not under dist/`)
    return rel.slice('dist/'.length)
  })
}

const BUILTIN = new Set(builtinModules)

/** 'ioredis' -> 'ioredis', '@haraka/email-address/x' -> '@haraka/email-address'; null for builtins. */
function packageOf(spec: string): string | null {
  if (spec.startsWith('node:') || BUILTIN.has(spec.split('/')[0])) return null
  const parts = spec.split('/')
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

function resolveRelative(fromFile: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(fromFile), spec)
  return [base, `${base}.js`, `${base}.json`, path.join(base, 'index.js')].find((f) => fs.statSync(f, { throwIfNoEntry: false })?.isFile())
}

// tsc emits a require() call for every import that survives type erasure, dynamic ones included.
const REQUIRE = /\brequire\((["'])([\w@./:-]+)\1\)/g

/**
 * The compiled files (relative to `distDir`) that the entries reach through relative
 * require()s, and the npm packages they require.
 */
export function closure(distDir: string, entryFiles: string[]): { files: string[]; modules: string[] } {
  const files = new Set<string>()
  const modules = new Set<string>()
  const todo = entryFiles.map((e) => path.join(distDir, e))
  while (todo.length > 0) {
    const file = todo.pop()!
    const rel = path.relative(distDir, file)
    if (files.has(rel)) continue
    if (rel.startsWith('..')) throw new Error(`${file} is outside ${distDir}`)
    files.add(rel)
    if (!file.endsWith('.js')) continue
    for (const m of fs.readFileSync(file, 'utf8').matchAll(REQUIRE)) {
      const spec = m[2]
      if (spec.startsWith('.')) {
        const target = resolveRelative(file, spec)
        if (!target) throw new Error(`${rel}: cannot resolve '${spec}'`)
        todo.push(target)
      } else {
        const pkg = packageOf(spec)
        if (pkg) modules.add(pkg)
      }
    }
  }
  return { files: [...files].sort(), modules: [...modules].sort() }
}

/** The compiled tree a workspace's dist/ stands for (the root dist/ while it is a symlink). */
function distOf(wsDir: string): string {
  return fs.realpathSync(path.join(wsDir, 'dist'))
}

/** The workspace's files under dist/ and the npm packages they require. */
export function packageClosure(wsDir: string): { files: string[]; modules: string[] } {
  return closure(distOf(wsDir), entries(readPackage(wsDir)))
}

/** The commented default ini of a plugin package: its own config/, else the clone's config/. */
export function defaultIni(wsDir: string): string | undefined {
  const name = pluginName(readPackage(wsDir))
  if (!name) return undefined
  const own = path.join(wsDir, 'config', `${name}.ini`)
  if (fs.existsSync(own)) return own
  const clone = path.join(distOf(wsDir), '..', 'config', `${name}.ini`)
  return fs.existsSync(clone) ? clone : undefined
}

/**
 * Writes what the package ships into `dest`: dist/ (the closure), config/<name>.ini and,
 * with `meta`, package.json, README.md and LICENSE.
 */
export function assemble(wsDir: string, dest: string, meta: boolean): number {
  const src = distOf(wsDir)
  const { files } = packageClosure(wsDir)
  for (const f of files) {
    fs.mkdirSync(path.join(dest, 'dist', path.dirname(f)), { recursive: true })
    fs.copyFileSync(path.join(src, f), path.join(dest, 'dist', f))
  }
  const ini = defaultIni(wsDir)
  if (ini) {
    fs.mkdirSync(path.join(dest, 'config'), { recursive: true })
    fs.copyFileSync(ini, path.join(dest, 'config', path.basename(ini)))
    // The Redis setting the three plugins share: every package carries the documented defaults.
    const shared = path.join(path.dirname(ini), 'mx6.ini')
    if (fs.existsSync(shared)) fs.copyFileSync(shared, path.join(dest, 'config', 'mx6.ini'))
  }
  if (meta) {
    for (const f of ['package.json', 'README.md', 'LICENSE']) {
      if (fs.existsSync(path.join(wsDir, f))) fs.copyFileSync(path.join(wsDir, f), path.join(dest, f))
    }
  }
  return files.length
}

/** prepack: dist/ and config/ become real copies of what the package ships. */
export function stage(wsDir: string): void {
  const tmp = path.join(wsDir, '.pack-staging')
  fs.rmSync(tmp, { recursive: true, force: true })
  assemble(wsDir, tmp, false)
  fs.rmSync(path.join(wsDir, 'dist'), { recursive: true, force: true })
  fs.renameSync(path.join(tmp, 'dist'), path.join(wsDir, 'dist'))
  if (fs.existsSync(path.join(tmp, 'config'))) {
    fs.rmSync(path.join(wsDir, 'config'), { recursive: true, force: true })
    fs.renameSync(path.join(tmp, 'config'), path.join(wsDir, 'config'))
  }
  fs.rmSync(tmp, { recursive: true, force: true })
}

/** The development layout: dist/ -> the root dist/, no staged config/. */
export function link(wsDir: string, root = repoRoot()): void {
  const dist = path.join(wsDir, 'dist')
  fs.rmSync(dist, { recursive: true, force: true })
  fs.symlinkSync(path.relative(wsDir, path.join(root, 'dist')), dist, 'dir')
  // config/ in a workspace only ever holds the staged copy of the root ini.
  if (pluginName(readPackage(wsDir))) fs.rmSync(path.join(wsDir, 'config'), { recursive: true, force: true })
  fs.rmSync(path.join(wsDir, '.pack-staging'), { recursive: true, force: true })
}

// node dist/scripts/pack.js link            (root: every workspace, after tsc)
// node ../../dist/scripts/pack.js stage|link  (a workspace's prepack / postpack)
if (require.main === module) {
  const [cmd] = process.argv.slice(2)
  const cwd = process.cwd()
  const isRoot = path.resolve(cwd) === repoRoot()
  const targets = isRoot ? workspaces() : [cwd]
  if (cmd === 'stage') targets.forEach(stage)
  else if (cmd === 'link') targets.forEach((w) => link(w))
  else {
    process.stderr.write('usage: pack.js stage|link\n')
    process.exit(2)
  }
}
