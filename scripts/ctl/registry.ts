// The mx6ctl commands beyond install, one module each.
import type { Command } from './command'

export const COMMANDS: Record<string, Command> = {}
