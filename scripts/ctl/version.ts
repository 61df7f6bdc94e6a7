// mx6ctl version (also mx6ctl --version): the suite's version from its package.json.
import fs from 'node:fs'
import path from 'node:path'
import { packageRoot } from '../install'
import { parse, UsageError, type Command } from './command'

const HELP = `Usage: mx6ctl version [--json]
       mx6ctl --version

Prints "mx6ctl <version>", the version of the installed haraka-mx6 package
(from its package.json); --json prints {"name": "haraka-mx6", "version": ...}.
Exit status: 0, or 2 for a usage error.
`

export function packageVersion(): { name: string; version: string } {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
  return { name: String(pkg.name ?? 'haraka-mx6'), version: String(pkg.version ?? 'unknown') }
}

export const versionCommand: Command = {
  summary: 'print the haraka-mx6 version (also: mx6ctl --version)',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { json: { type: 'boolean' } })
    if (positionals.length) throw new UsageError('version takes no arguments')
    const v = packageVersion()
    io.out(values.json ? JSON.stringify(v) : `mx6ctl ${v.version}`)
    return 0
  },
}
