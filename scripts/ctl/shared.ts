// Helpers every mx6ctl command shares: the Redis context with its errors, safe printing of
// untrusted text, tables, and scans that never read a huge key in one command.
import { ReplyError } from 'ioredis'
import { describeRedis } from '../../plugins/lib/redis'
import { CtlError, UsageError, type GlobalOptions, type Io } from './command'
import { openContext, type Context } from './context'
import type { ReceiveConfig } from '../../plugins/mx6-receive/config'

/**
 * Opens the context, runs `work`, always closes; Redis errors become one-line CtlErrors.
 * `receive`: the settings when the command already read them (to check its input before connecting).
 */
export async function withRedis<T>(global: GlobalOptions, io: Io, work: (ctx: Context) => Promise<T>, receive?: ReceiveConfig): Promise<T> {
  // The client already has the operator timeout (OPERATOR_TIMEOUT_MS in context.ts), Cluster nodes too.
  const ctx = await openContext(global, io, receive)
  try {
    return await work(ctx)
  } catch (err) {
    throw redisError(err, ctx)
  } finally {
    await ctx.close()
  }
}

/** Errors from Redis (replies, lost connection, timeouts) as CtlError; anything else unchanged. */
export function redisError(err: unknown, ctx: Context): unknown {
  if (err instanceof CtlError) return err
  if (err instanceof ReplyError) {
    const msg = (err as Error).message
    const m = /^WRONGTYPE/.test(msg) ? `${msg} (mx6ctl lint shows which key)` : msg
    return new CtlError(`redis error: ${m}`)
  }
  if (err instanceof Error && /Connection is closed|Command timed out|ECONN|EPIPE|ETIMEDOUT|Stream isn't writeable|max retries/i.test(err.message)) {
    return new CtlError(`redis ${describeRedis(ctx.settings)}: ${err.message}`)
  }
  return err
}

/** "cannot read <file>: <reason>" for a failed open/stat/read: the operator named the file, so exit status 2. */
export function fileError(file: string, err: unknown): UsageError {
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'a part of the path is not a directory',
    ELOOP: 'too many levels of symbolic links',
  }
  const code = (err as NodeJS.ErrnoException).code ?? ''
  return new UsageError(`cannot read ${shown(file)}: ${reasons[code] ?? (err as Error).message}`)
}

/** The error of a MULTI/pipeline result, thrown; else the value. */
export function value<T = unknown>(result: [Error | null, unknown] | undefined): T {
  if (!result) throw new CtlError('redis: transaction discarded')
  if (result[0]) throw result[0]
  return result[1] as T
}

/** Untrusted text (Redis contents, remote replies) for a terminal: quoted, control and bidi characters escaped, bounded. */
export function quote(s: string, max = 300): string {
  const cut = s.length > max ? `${s.slice(0, max)}` : s
  const q = JSON.stringify(cut).replace(/[\u007f-\u009f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return s.length > max ? `${q}...(${s.length} characters)` : q
}

/**
 * A shell word for a copy-and-paste hint: as is when plain, else in single
 * quotes (so "$(...)" in a hostile entry is never run); null when the text has
 * characters a terminal would not show faithfully.
 */
export function shellArg(s: string): string | null {
  if (/^[A-Za-z0-9@%+=:,./_-]+$/.test(s)) return s
  // eslint-disable-next-line no-control-regex
  if (s.length > 300 || /[\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/.test(s)) return null
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** Like quote(), without the surrounding quotes when the text is plain printable. */
export function shown(s: string, max = 300): string {
  const q = quote(s, max)
  return /^"[\x20-\x7e]*"$/.test(q) && !q.slice(1, -1).includes('\\') ? q.slice(1, -1) : q
}

/** Left-aligned columns; the last column is not padded. */
export function table(rows: string[][], right: boolean[] = []): string[] {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)))
  return rows.map((r) =>
    r
      .map((c, i) => (right[i] ? c.padStart(widths[i]) : i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  )
}

/** All fields and values of a hash with HSCAN (never HGETALL on a possibly huge key). */
export async function scanHash(ctx: Context, key: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  let cursor = '0'
  do {
    const [next, flat] = await ctx.redis.hscan(key, cursor, 'COUNT', 1000)
    cursor = next
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i], flat[i + 1])
  } while (cursor !== '0')
  return out
}

/** All members of a set with SSCAN. */
export async function scanSet(ctx: Context, key: string): Promise<Set<string>> {
  const out = new Set<string>()
  let cursor = '0'
  do {
    const [next, members] = await ctx.redis.sscan(key, cursor, 'COUNT', 1000)
    cursor = next
    for (const m of members) out.add(m)
  } while (cursor !== '0')
  return out
}
