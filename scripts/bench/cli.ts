// The benchmarks' command lines, read with mx6ctl's parse(): --help anywhere prints the
// help; a bad option or value is a usage error (exit status 2), as in mx6ctl.
import type { ParseArgsConfig } from 'node:util'
import { parse, wantsHelp } from '../ctl/command'

/** Prints `tool: message` (and the help, if given) to stderr and exits with status 2. */
export function usage(tool: string, message: string, help?: string): never {
  process.stderr.write(`${tool}: ${message}\n${help ? `\n${help}` : ''}`)
  process.exit(2)
}

/** The parsed options; exits after printing the help, or on a usage error. */
export function options<T extends NonNullable<ParseArgsConfig['options']>>(tool: string, help: string, argv: string[], spec: T, allowPositionals = false) {
  if (wantsHelp(argv)) {
    process.stdout.write(help)
    process.exit(0)
  }
  try {
    return parse(argv, spec, allowPositionals)
  } catch (err) {
    return usage(tool, (err as Error).message, help)
  }
}

/** A whole number from 1 to `max` (the default when the option is absent), else a usage error. */
export function whole(tool: string, flag: string, value: string | undefined, def: number, max: number): number {
  if (value === undefined) return def
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > max) usage(tool, `${flag} wants a whole number from 1 to ${max}, not ${value}`)
  return n
}
