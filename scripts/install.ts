// Installs the plugin packages into an existing Haraka instance as folder plugins, for
// operators who do not manage the instance with npm.
//
// Haraka loads `<instance>/plugins/<name>/package.json` and require()s its `main` (see
// Haraka's plugins.js). Each installed folder is self-contained: the package's files plus a
// node_modules/ with copies of its runtime dependencies, so moving or deleting the clone (or
// the mx6ctl package) it came from does not break Haraka. A manifest in the folder records
// what install added, for `mx6ctl uninstall`.
import fs from 'node:fs'
import path from 'node:path'
import { assemble, readPackage } from './pack'

export const PLUGINS = ['mx6-receive', 'mx6-send', 'mx6-learn'] as const

/** Written into each installed plugin folder; its presence marks the folder as ours. */
export const MANIFEST = 'mx6ctl-install.json'

interface Manifest {
  package: string
  version: string
  /** config/<name>.ini was copied by install (not there before): --purge removes it. */
  configCopied: boolean
}

export class InstallError extends Error {}

export interface InstallReport {
  lines: string[]
  pluginsLine: string[]
}

/** The package root: dist/scripts/install.js -> ../.. */
export function packageRoot(): string {
  return path.resolve(__dirname, '..', '..')
}

function isHarakaInstance(dir: string): boolean {
  // `haraka -i` creates config/ with smtp.ini and plugins; an instance also needs plugins/ or gets one.
  return (
    fs.existsSync(path.join(dir, 'config')) &&
    (fs.existsSync(path.join(dir, 'config', 'smtp.ini')) || fs.existsSync(path.join(dir, 'config', 'plugins')))
  )
}

function checkInstance(harakaDir: string): string {
  const target = path.resolve(harakaDir)
  if (!fs.existsSync(target) || !fs.statSync(target).isDirectory()) {
    throw new InstallError(`${harakaDir}: no such directory`)
  }
  if (!isHarakaInstance(target)) {
    throw new InstallError(
      `${harakaDir}: not a Haraka instance (no config/smtp.ini or config/plugins). Create one with "haraka -i ${harakaDir}".`,
    )
  }
  return target
}

/** The directory of an installed package, found the way Node would from `fromDir`. */
function findPackage(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate)
    if (path.dirname(dir) === dir) return undefined
  }
}

/** The plugin package this mx6ctl ships with: the workspace in a clone, a dependency when installed. */
export function pluginPackage(name: string): string {
  const dir = findPackage(`haraka-plugin-${name}`, __dirname)
  if (!dir || !fs.existsSync(path.join(dir, 'dist'))) {
    throw new InstallError(`haraka-plugin-${name} not found next to mx6ctl: run "npm ci && npm run build" first`)
  }
  return dir
}

/**
 * Copies `deps` (and theirs) as resolved from `fromSrc` into `<dest>/node_modules`: flat where
 * the name is free, nested under the dependent where another version took the name.
 */
function vendorDependencies(fromSrc: string, deps: string[], dest: string): number {
  const top = new Map<string, string>()
  let copied = 0
  const visit = (src: string, destDir: string, names: string[], optional: Set<string>): void => {
    for (const name of names) {
      const found = findPackage(name, src)
      if (!found) {
        if (optional.has(name)) continue
        throw new InstallError(`dependency ${name} of ${path.basename(src)} not found: run "npm ci" first`)
      }
      const atTop = top.get(name)
      if (atTop === found) continue
      const target = atTop === undefined ? path.join(dest, 'node_modules', name) : path.join(destDir, 'node_modules', name)
      if (atTop === undefined) top.set(name, found)
      if (fs.existsSync(target)) continue
      // Its own node_modules/ is walked as dependencies, so only what it needs is copied.
      fs.cpSync(found, target, { recursive: true, dereference: true, filter: (s) => s !== path.join(found, 'node_modules') })
      copied++
      const pkg = readPackage(found)
      const opt = Object.keys(pkg.optionalDependencies ?? {})
      visit(found, target, [...Object.keys(pkg.dependencies ?? {}), ...opt], new Set(opt))
    }
  }
  visit(fromSrc, dest, deps, new Set())
  return copied
}

function readManifest(dir: string): Manifest | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest
  } catch {
    return undefined
  }
}

/** A folder an earlier mx6ctl (before manifests) installed: its package.json says so. */
function legacyInstall(dir: string): boolean {
  try {
    return /\(installed by mx6ctl\)/.test(String((readPackage(dir) as { description?: string }).description))
  } catch {
    return false
  }
}

export function install(harakaDir: string): InstallReport {
  const target = checkInstance(harakaDir)
  const lines: string[] = []
  fs.mkdirSync(path.join(target, 'plugins'), { recursive: true })
  for (const name of PLUGINS) {
    const src = pluginPackage(name)
    const pkg = readPackage(src)
    const dir = path.join(target, 'plugins', name)
    const previous = readManifest(dir)
    if (fs.existsSync(dir) && !previous && !legacyInstall(dir)) {
      throw new InstallError(`${dir} exists and was not installed by mx6ctl: move it away first`)
    }
    const cfgName = `${name}.ini`
    const cfgDst = path.join(target, 'config', cfgName)
    const hadConfig = fs.existsSync(cfgDst)

    // Built next to the old folder and swapped in, so a failed copy leaves the old one working.
    const fresh = path.join(target, 'plugins', `.${name}.mx6ctl-new`)
    fs.rmSync(fresh, { recursive: true, force: true })
    try {
      const files = assemble(src, fresh, true)
      const deps = vendorDependencies(src, Object.keys(pkg.dependencies ?? {}), fresh)
      const manifest: Manifest = { package: pkg.name, version: pkg.version ?? '', configCopied: previous?.configCopied ?? !hadConfig }
      fs.writeFileSync(path.join(fresh, MANIFEST), JSON.stringify(manifest, null, 2) + '\n')
      fs.rmSync(dir, { recursive: true, force: true })
      fs.renameSync(fresh, dir)
      lines.push(`plugins/${name}: installed ${pkg.name}@${pkg.version} (${files} files, ${deps} packages in node_modules/)`)
      // `haraka -c <dir> -h <name>` reads docs/plugins/<name>.md of the instance.
      const doc = path.join(target, 'docs', 'plugins', `${name}.md`)
      fs.mkdirSync(path.dirname(doc), { recursive: true })
      fs.copyFileSync(path.join(dir, 'README.md'), doc)
    } finally {
      fs.rmSync(fresh, { recursive: true, force: true })
    }
    if (hadConfig) {
      lines.push(`config/${cfgName}: kept (already present)`)
    } else {
      fs.copyFileSync(path.join(dir, 'config', cfgName), cfgDst)
      lines.push(`config/${cfgName}: copied default`)
    }
    // Haraka looks in node_modules/haraka-plugin-<name> before plugins/<name>/.
    if (fs.existsSync(path.join(target, 'node_modules', `haraka-plugin-${name}`, 'package.json'))) {
      lines.push(`warning: node_modules/haraka-plugin-${name} (installed with npm) is what Haraka loads, not plugins/${name}`)
    }
  }
  // The Redis setting the three plugins share, documented; never overwritten.
  const shared = path.join(target, 'config', 'mx6.ini')
  if (fs.existsSync(shared)) lines.push('config/mx6.ini: kept (already present)')
  else {
    fs.copyFileSync(path.join(target, 'plugins', 'mx6-receive', 'config', 'mx6.ini'), shared)
    lines.push('config/mx6.ini: copied default (the Redis setting the three plugins and mx6ctl share)')
  }
  return { lines, pluginsLine: recommendedPlugins() }
}

export interface UninstallReport {
  lines: string[]
  /** Names still listed in config/plugins: Haraka will not start until they are removed there. */
  stillListed: string[]
}

/** Removes the plugin folders install added and, with `purge`, the config files it copied. */
export function uninstall(harakaDir: string, purge: boolean): UninstallReport {
  const target = checkInstance(harakaDir)
  const lines: string[] = []
  for (const name of PLUGINS) {
    const dir = path.join(target, 'plugins', name)
    const manifest = readManifest(dir)
    const ours = manifest !== undefined || legacyInstall(dir)
    if (ours) {
      fs.rmSync(dir, { recursive: true, force: true })
      lines.push(`plugins/${name}: removed`)
      fs.rmSync(path.join(target, 'docs', 'plugins', `${name}.md`), { force: true })
    } else if (fs.existsSync(dir)) {
      lines.push(`plugins/${name}: left alone (not installed by mx6ctl)`)
    } else {
      lines.push(`plugins/${name}: not installed`)
    }
    if (fs.existsSync(path.join(target, 'node_modules', `haraka-plugin-${name}`))) {
      lines.push(`node_modules/haraka-plugin-${name}: left alone (installed with npm: npm uninstall haraka-plugin-${name})`)
    }
    const cfgName = `${name}.ini`
    if (!fs.existsSync(path.join(target, 'config', cfgName))) continue
    if (!purge) lines.push(`config/${cfgName}: kept (--purge removes it)`)
    else if (manifest?.configCopied) {
      fs.rmSync(path.join(target, 'config', cfgName))
      lines.push(`config/${cfgName}: removed`)
    } else {
      lines.push(`config/${cfgName}: kept (it was not copied by mx6ctl install)`)
    }
  }
  // The docs folder install made goes too, if nothing else is in it.
  try {
    fs.rmdirSync(path.join(target, 'docs', 'plugins'))
  } catch {
    // not empty, or not there
  }
  // mx6.ini goes with --purge only while it is the shipped file unchanged (then install put it there).
  const shared = path.join(target, 'config', 'mx6.ini')
  if (fs.existsSync(shared)) {
    const shipped = path.join(packageRoot(), 'config', 'mx6.ini')
    const unchanged = fs.existsSync(shipped) && fs.readFileSync(shipped, 'utf8') === fs.readFileSync(shared, 'utf8')
    if (!purge) lines.push('config/mx6.ini: kept (--purge removes it)')
    else if (unchanged) {
      fs.rmSync(shared)
      lines.push('config/mx6.ini: removed')
    } else lines.push('config/mx6.ini: kept (changed since it was installed)')
  }
  const listFile = path.join(target, 'config', 'plugins')
  const listed = fs.existsSync(listFile) ? fs.readFileSync(listFile, 'utf8').split('\n').map((l) => l.trim()) : []
  const stillListed = PLUGINS.filter((p) => listed.includes(p) || listed.includes(`haraka-plugin-${p}`))
  return { lines, stillListed }
}

/** The order that matters: spf at mail, dkim before our data_post, recipients checked after us, a queue last. */
export function recommendedPlugins(): string[] {
  return [
    'spf',
    'dkim',
    'mx6-receive',
    'rcpt_to.in_host_list',
    'mx6-learn',
    '# your queue plugin, e.g. queue/smtp_forward or queue/lmtp',
    '# and, for outbound delivery with MX6 (before any other get_mx plugin):',
    'mx6-send',
  ]
}
