// mx6ctl uninstall [--purge] <haraka-dir>
import { InstallError, uninstall } from '../install'
import { CtlError, parse, UsageError, type Command } from './command'

const HELP = `Usage: mx6ctl uninstall [--purge] <haraka-dir>

Removes what "mx6ctl install" added to <haraka-dir>: the folders
plugins/mx6-receive, plugins/mx6-send and plugins/mx6-learn. Your
config/mx6-*.ini files are kept; --purge also removes the ones install copied
(never one you had before). It does not edit config/plugins: it tells you which
lines to remove there, as Haraka does not start with a plugin it cannot find.
Packages installed with npm (node_modules/haraka-plugin-mx6-*) are left to npm.
`

export const uninstallCommand: Command = {
  summary: 'remove what install added (config kept unless --purge)',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { purge: { type: 'boolean' } })
    if (positionals.length !== 1) throw new UsageError('expected exactly one <haraka-dir>')
    try {
      const report = uninstall(positionals[0], values.purge === true)
      for (const l of report.lines) io.out(l)
      if (report.stillListed.length > 0) {
        io.out(`\nRemove from ${positionals[0]}/config/plugins (Haraka will not start otherwise): ${report.stillListed.join(', ')}`)
      }
      return 0
    } catch (err) {
      if (err instanceof InstallError) throw new CtlError(err.message)
      throw err
    }
  },
}
