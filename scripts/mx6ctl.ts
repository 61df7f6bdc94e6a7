#!/usr/bin/env node
// mx6ctl: the operator's command-line tool for haraka-mx6.
import { install, InstallError } from './install'

const USAGE = `Usage: mx6ctl <command> [options]

Commands:
  install <haraka-dir>   Install the compiled plugins into an existing Haraka
                         instance (plugins/<name>/), copy default config files
                         the instance does not have yet (never overwrites), and
                         print the lines to add to config/plugins. Safe to re-run.
  help [command]         Show this help.

Options:
  -h, --help             Show help.
`

const INSTALL_HELP = `Usage: mx6ctl install <haraka-dir>

Installs mx6-receive and mx6-send into <haraka-dir>/plugins/ as folder
plugins, copies config/mx6-receive.ini and config/mx6-send.ini when the
instance has none, and prints the config/plugins order to use. Running it
again updates the code and keeps your configuration.
`

export function main(argv: string[]): number {
  const [cmd, ...rest] = argv
  if (!cmd || cmd === 'help' || cmd === '-h' || cmd === '--help') {
    process.stdout.write(rest[0] === 'install' ? INSTALL_HELP : USAGE)
    return cmd ? 0 : 2
  }
  switch (cmd) {
    case 'install': {
      if (rest.includes('-h') || rest.includes('--help')) {
        process.stdout.write(INSTALL_HELP)
        return 0
      }
      if (rest.length !== 1) {
        process.stderr.write(`mx6ctl install: expected exactly one <haraka-dir>\n\n${INSTALL_HELP}`)
        return 2
      }
      try {
        const report = install(rest[0])
        for (const l of report.lines) process.stdout.write(`${l}\n`)
        process.stdout.write(`\nAdd to ${rest[0]}/config/plugins, in this order (keep your other plugins):\n`)
        for (const l of report.pluginsLine) process.stdout.write(`  ${l}\n`)
        return 0
      } catch (err) {
        if (err instanceof InstallError) {
          process.stderr.write(`mx6ctl install: ${err.message}\n`)
          return 1
        }
        throw err
      }
    }
    default:
      process.stderr.write(`mx6ctl: unknown command "${cmd}"\n\n${USAGE}`)
      return 2
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2))
}
