// Installs the compiled suite into an existing Haraka instance as folder plugins.
//
// Haraka loads `<instance>/plugins/<name>/package.json` and require()s its `main`
// (see Haraka's plugins.js). Each installed folder holds a copy of the compiled
// tree, so the instance does not depend on where this package was unpacked,
// and a `node_modules` link only when the runtime dependencies do not already
// resolve from the instance (e.g. when the suite was `npm install`ed there).
import fs from 'node:fs'
import path from 'node:path'

export const PLUGINS = ['mx6-receive', 'mx6-send', 'mx6-learn'] as const

/** Runtime modules the compiled plugins require(). */
const RUNTIME_DEPS = ['ioredis', 'ipaddr.js', 'tldts', 'haraka-dsn', 'haraka-constants', '@haraka/email-address', 'dns2', 'haraka-plugin-spf']

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

function copyTree(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true })
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, entry.name)
    const d = path.join(dst, entry.name)
    if (entry.isDirectory()) copyTree(s, d)
    else if (entry.isFile() && /\.js$/.test(entry.name)) fs.copyFileSync(s, d)
  }
}

function depsResolveFrom(dir: string): string[] {
  const missing: string[] = []
  for (const dep of RUNTIME_DEPS) {
    try {
      require.resolve(dep, { paths: [dir] })
    } catch {
      missing.push(dep)
    }
  }
  return missing
}

export function install(harakaDir: string): InstallReport {
  const target = path.resolve(harakaDir)
  if (!fs.existsSync(target) || !fs.statSync(target).isDirectory()) {
    throw new InstallError(`${harakaDir}: no such directory`)
  }
  if (!isHarakaInstance(target)) {
    throw new InstallError(
      `${harakaDir}: not a Haraka instance (no config/smtp.ini or config/plugins). Create one with "haraka -i ${harakaDir}".`,
    )
  }
  const root = packageRoot()
  const dist = path.join(root, 'dist', 'plugins')
  if (!fs.existsSync(path.join(dist, 'mx6-receive', 'index.js'))) {
    throw new InstallError(`compiled plugins not found in ${dist}: run "npm run build" first`)
  }
  const lines: string[] = []
  for (const name of PLUGINS) {
    const dir = path.join(target, 'plugins', name)
    fs.rmSync(path.join(dir, 'dist'), { recursive: true, force: true })
    copyTree(dist, path.join(dir, 'dist', 'plugins'))
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name, private: true, description: `haraka-mx6 ${name} (installed by mx6ctl)`, main: `dist/plugins/${name}/index.js` }, null, 2) + '\n',
    )
    const nm = path.join(dir, 'node_modules')
    const missing = depsResolveFrom(dir)
    if (missing.length > 0) {
      fs.rmSync(nm, { recursive: true, force: true })
      fs.symlinkSync(path.join(root, 'node_modules'), nm, 'dir')
      lines.push(`plugins/${name}: installed (dependencies linked from ${path.join(root, 'node_modules')})`)
    } else {
      lines.push(`plugins/${name}: installed`)
    }
    const cfgName = `${name}.ini`
    const cfgDst = path.join(target, 'config', cfgName)
    if (fs.existsSync(cfgDst)) {
      lines.push(`config/${cfgName}: kept (already present)`)
    } else {
      fs.copyFileSync(path.join(root, 'config', cfgName), cfgDst)
      lines.push(`config/${cfgName}: copied default`)
    }
  }
  return { lines, pluginsLine: recommendedPlugins() }
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
