// The mx6ctl commands beyond install, one module each.
import type { Command } from './command'
import { bookCommand } from './book'
import { dnsCommand } from './dns-cmd'
import { explainCommand } from './explain'
import { fallbacksCommand } from './fallbacks'
import { followupCommand } from './followup'
import { lintCommand } from './lint-cmd'
import { allowCommand, greenCommand } from './lists'
import { statsCommand } from './stats'

export const COMMANDS: Record<string, Command> = {
  allow: allowCommand,
  green: greenCommand,
  book: bookCommand,
  lint: lintCommand,
  stats: statsCommand,
  fallbacks: fallbacksCommand,
  followup: followupCommand,
  explain: explainCommand,
  dns: dnsCommand,
}
