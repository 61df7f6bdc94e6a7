// The shape of an mx6ctl command, and the errors commands report.
import { parseArgs, type ParseArgsConfig } from 'node:util'

export interface Io {
  out(text: string): void
  err(text: string): void
}

export const stdio: Io = {
  out: (t) => void process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
}

export interface Command {
  /** One line for the command list. */
  summary: string
  /** Full `--help` text. */
  help: string
  /** Returns the exit status: 0 ok, 1 failure (Redis or DNS trouble, problems found), 2 invalid input or usage. */
  run(argv: string[], io: Io, global: GlobalOptions): Promise<number>
}

export interface GlobalOptions {
  /** Haraka instance (or its config/) directory whose mx6-*.ini to read. */
  config?: string
}

/** A failure with a message for the operator (one line, no stack). */
export class CtlError extends Error {
  constructor(
    message: string,
    readonly status = 1,
  ) {
    super(message)
  }
}

/**
 * Invalid input or usage (bad options, a malformed entry, an unreadable file): exit
 * status 2, one line pointing at the help. `global` points at `mx6ctl --help` instead
 * of the command's (for --config, a global option).
 */
export class UsageError extends CtlError {
  constructor(
    message: string,
    readonly global = false,
  ) {
    super(message, 2)
  }
}

/** The one stderr line of a UsageError: "mx6ctl <cmd>: <message>; see `mx6ctl <cmd> --help`". */
export function usageLine(command: string | null, message: string, helpOf: string | null = command): string {
  // Node's parseArgs messages and quoted input are one line already; this keeps it so.
  return `mx6ctl${command ? ` ${command}` : ''}: ${message.replace(/\s*\n\s*/g, ' ')}; see \`mx6ctl${helpOf ? ` ${helpOf}` : ''} --help\``
}

export function wantsHelp(argv: string[]): boolean {
  return argv.includes('-h') || argv.includes('--help')
}

/** node:util parseArgs, with its errors turned into UsageError. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}
