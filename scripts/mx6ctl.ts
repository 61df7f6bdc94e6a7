#!/usr/bin/env node
// mx6ctl: the operator's command-line tool for haraka-mx6.
import { CtlError, stdio, UsageError, wantsHelp, type GlobalOptions, type Io } from './ctl/command'
import { COMMANDS } from './ctl/registry'

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
`
}

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const global: GlobalOptions = {}
  const args = [...argv]
  while (args[0] === '--config') {
    args.shift()
    const dir = args.shift()
    if (!dir) {
      io.err('mx6ctl: --config needs a directory')
      return 2
    }
    global.config = dir
  }
  const [name, ...rest] = args
  if (!name || name === 'help' || name === '-h' || name === '--help') {
    const topic = rest[0] && COMMANDS[rest[0]]
    io.out(topic ? topic.help : usage())
    return name ? 0 : 2
  }
  const cmd = COMMANDS[name]
  if (!cmd) {
    io.err(`mx6ctl: unknown command "${name}"\n\n${usage()}`)
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
      io.err(`mx6ctl ${name}: ${err.message}\n\n${cmd.help}`)
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
