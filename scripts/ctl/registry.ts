// Every mx6ctl command, one module each, in the order `mx6ctl --help` lists them.
import type { Command } from './command'
import { bookCommand } from './book'
import { configCommand } from './config-cmd'
import { dnsCommand } from './dns-cmd'
import { explainCommand } from './explain'
import { fallbacksCommand } from './fallbacks'
import { followupCommand } from './followup'
import { installCommand } from './install-cmd'
import { lintCommand } from './lint-cmd'
import { allowCommand, arcCommand, greenCommand } from './lists'
import { statsCommand } from './stats'
import { syncCommand } from './sync'
import { uninstallCommand } from './uninstall-cmd'
import { versionCommand } from './version'

export const COMMANDS: Record<string, Command> = {
  install: installCommand,
  uninstall: uninstallCommand,
  allow: allowCommand,
  green: greenCommand,
  arc: arcCommand,
  book: bookCommand,
  sync: syncCommand,
  lint: lintCommand,
  stats: statsCommand,
  fallbacks: fallbacksCommand,
  followup: followupCommand,
  explain: explainCommand,
  dns: dnsCommand,
  config: configCommand,
  version: versionCommand,
}
