// mx6ctl config check <haraka-dir>: what the plugins would warn about at start-up (plugin
// order, unknown keys, bad values, unusable Redis settings), and the keys the shipped ini
// files have that the installed ones lack (new in a release).
import fs from 'node:fs'
import path from 'node:path'
import { withSharedRedis, orderWarnings, SHARED_CONFIG } from '../../plugins/lib/shared-config'
import { readLearnConfig } from '../../plugins/mx6-learn/config'
import { readReceiveConfig } from '../../plugins/mx6-receive/config'
import { readSendConfig } from '../../plugins/mx6-send/config'
import { parse, UsageError, type Command } from './command'
import { configRoot } from './context'

// haraka-config has no types; only module_config().get() is used.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const harakaConfig = require('haraka-config') as { module_config(root: string): { get(file: string, opts?: unknown): unknown } }

const HELP = `Usage: mx6ctl config check <haraka-dir> [--json]

Reads the Haraka instance's config/ as the plugins do and prints what they
would warn about at start-up: the order of config/plugins (spf and dkim before
mx6-receive, malware scanners before it, content spam filters after it),
unknown sections and keys (with the nearest known key), values that fall back
to a default, Redis settings that cannot be used, and the keys the shipped
config/<plugin>.ini files have that the installed ones lack.

Exit status: 0 nothing to report, 1 something to report, 2 usage error.
  --json   {"findings": [{"file", "kind", "message"}]}
`

/** Where the shipped ini files are: config/ at the root of this package. */
const SHIPPED = path.resolve(__dirname, '..', '..', '..', 'config')

const PLUGINS = [
  { name: 'mx6-receive', file: 'mx6-receive.ini', read: readReceiveConfig },
  { name: 'mx6-learn', file: 'mx6-learn.ini', read: readLearnConfig },
  { name: 'mx6-send', file: 'mx6-send.ini', read: readSendConfig },
] as const

interface Finding {
  file: string
  kind: 'order' | 'unknown' | 'value' | 'missing'
  message: string
}

/** The keys an ini file names, commented out (";key=") or not, as section.key. */
export function iniKeys(text: string): Set<string> {
  const keys = new Set<string>()
  let section = 'main'
  for (const line of text.split('\n')) {
    const head = /^\s*\[(\w+)\]/.exec(line)
    if (head) section = head[1]
    const kv = /^\s*;?\s*([a-z_]+)\s*=/.exec(line)
    if (kv && !head) keys.add(`${section}.${kv[1]}`)
  }
  return keys
}

export function checkInstance(root: string): Finding[] {
  const cfg = harakaConfig.module_config(root)
  const findings: Finding[] = []
  const installed = (file: string) => path.join(root, 'config', file)
  const plugins = fs.existsSync(installed('plugins')) ? fs.readFileSync(installed('plugins'), 'utf8').split('\n') : []
  const shared = cfg.get(SHARED_CONFIG, { booleans: [] }) as Record<string, Record<string, unknown>>
  for (const p of PLUGINS) {
    if (!plugins.some((l) => l.trim().replace(/^haraka-plugin-/, '') === p.name)) continue
    const { ini, redisFile } = withSharedRedis(cfg.get(p.file, { booleans: [] }) as Record<string, Record<string, unknown>>, shared, p.file)
    const { config, errors, unknown } = p.read(ini, redisFile)
    for (const message of errors) findings.push({ file: p.file, kind: 'value', message })
    for (const message of unknown) findings.push({ file: p.file, kind: 'unknown', message })
    if (p.name === 'mx6-receive') {
      const undecided = (config as { policy: { undecided: 'wait' | 'defer' } }).policy.undecided
      for (const message of orderWarnings(plugins, undecided)) findings.push({ file: 'plugins', kind: 'order', message })
    }
    const shippedFile = path.join(SHIPPED, p.file)
    if (fs.existsSync(shippedFile) && fs.existsSync(installed(p.file))) {
      const have = iniKeys(fs.readFileSync(installed(p.file), 'utf8'))
      for (const k of iniKeys(fs.readFileSync(shippedFile, 'utf8'))) {
        if (!have.has(k)) findings.push({ file: p.file, kind: 'missing', message: `${p.file} lacks [${k.split('.')[0]}] ${k.split('.')[1]} (documented in the shipped ${p.file}; the default applies)` })
      }
    }
  }
  return findings
}

export const configCommand: Command = {
  summary: 'check a Haraka instance: plugin order, unknown keys, bad values, keys new in this release',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } })
    if (positionals[0] !== 'check' || positionals.length !== 2) throw new UsageError('usage: mx6ctl config check <haraka-dir>')
    const findings = checkInstance(configRoot(positionals[1]))
    if (values.json) io.out(JSON.stringify({ findings }, null, 2))
    else if (findings.length === 0) io.out('nothing to report')
    else for (const f of findings) io.out(`${f.kind}: ${f.message}`)
    return findings.length ? 1 : 0
  },
}
