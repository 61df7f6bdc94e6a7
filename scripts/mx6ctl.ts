#!/usr/bin/env node
// mx6ctl: the operator's command-line tool for haraka-mx6.
import { CtlError, stdio, usageLine, UsageError, wantsHelp, type GlobalOptions, type Io } from './ctl/command'
import { COMMANDS } from './ctl/registry'
import { quote } from './ctl/shared'

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length))
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  return `Usage: mx6ctl [--config <haraka-dir>] <command> [options]

Commands:
${lines.join('\n')}

Global options:
  --config <dir>   Haraka instance (or its config/ directory) whose
                   mx6-receive.ini gives the Redis settings; default:
                   $MX6_CONFIG, else 127.0.0.1:6379. $MX6_REDIS_URL
                   overrides the Redis URL.
  -h, --help       Show help; "mx6ctl <command> --help" for a command.
  --version        Print the version (as "mx6ctl version").

Exit status: 0 success; 1 Redis or DNS trouble, or problems found (lint,
dns check, rm of an entry that is not there); 2 invalid input or usage (one
line on stderr ending with "see \`mx6ctl <command> --help\`"). Reporting
commands take --json; each command's --help documents the shape.
`
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const global: GlobalOptions = {}
  const args = [...argv]
  while (args[0] === '--config') {
    args.shift()
    const dir = args.shift()
    if (!dir) {
      io.err(usageLine(null, '--config needs a directory'))
      return 2
    }
    global.config = dir
  }
  const [given, ...rest] = args
  const name = given === '--version' ? 'version' : given
  if (name === 'help' || name === '-h' || name === '--help') {
    if (rest[0] && !COMMANDS[rest[0]]) {
      io.err(usageLine(null, `unknown command ${quote(rest[0], 80)}`))
      return 2
    }
    io.out(rest[0] ? COMMANDS[rest[0]].help : usage())
    return 0
  }
  if (!name) {
    io.err(usageLine(null, 'missing command'))
    return 2
  }
  const cmd = COMMANDS[name]
  if (!cmd) {
    io.err(usageLine(null, `${name.startsWith('-') ? 'unknown option' : 'unknown command'} ${quote(name, 80)}`))
    return 2
  }
  if (wantsHelp(rest)) {
    io.out(cmd.help)
    return 0
  }
  try {
    return await cmd.run(rest, io, global)
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(usageLine(name, err.message, err.global ? null : name))
      return err.status
    }
    if (err instanceof CtlError) {
      io.err(`mx6ctl ${name}: ${err.message}`)
      return err.status
    }
    throw err
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (err: Error) => {
      process.stderr.write(`mx6ctl: internal error: ${err.stack ?? err.message}\n`)
      process.exitCode = 1
    },
  )
}
