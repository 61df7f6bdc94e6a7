// mx6ctl install <haraka-dir>
import { install, InstallError } from '../install'
import { CtlError, UsageError, type Command } from './command'

const HELP = `Usage: mx6ctl install <haraka-dir>

Installs mx6-receive, mx6-send and mx6-learn into <haraka-dir>/plugins/ as
self-contained folder plugins (code and runtime dependencies copied, nothing
linked back to where mx6ctl lives), copies config/mx6-receive.ini, mx6-send.ini
and mx6-learn.ini when the instance has none, and prints the config/plugins
order to use. Running it again updates the code and keeps your configuration.
"mx6ctl uninstall <haraka-dir>" removes what it added.
`

export const installCommand: Command = {
  summary: 'install the plugins into a Haraka instance (safe to re-run)',
  help: HELP,
  async run(argv, io) {
    if (argv.length !== 1) throw new UsageError('expected exactly one <haraka-dir>')
    try {
      const report = install(argv[0])
      for (const l of report.lines) io.out(l)
      io.out(`\nAdd to ${argv[0]}/config/plugins, in this order (keep your other plugins):`)
      for (const l of report.pluginsLine) io.out(`  ${l}`)
      return 0
    } catch (err) {
      if (err instanceof InstallError) throw new CtlError(err.message)
      throw err
    }
  },
}
