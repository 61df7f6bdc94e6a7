// mx6ctl book add|rm|ls|import: a recipient's address book (mx6:book:<recipient>, a set).
import fs from 'node:fs'
import { decodeText, MAX_FILE_BYTES, parseAddressBook, type ParseResult } from './addressbook'
import { normaliseMember, normaliseRecipient } from './book-members'
import { CtlError, parse, UsageError, type Command, type GlobalOptions, type Io } from './command'
import { loadReceiveConfig } from './context'
import type { ReceiveConfig } from '../../plugins/mx6-receive/config'
import { fileError, quote, scanSet, shown, value, withRedis } from './shared'

const HELP = `Usage: mx6ctl book add <recipient> <sender|@domain>...
       mx6ctl book rm <recipient> <sender|@domain>...
       mx6ctl book ls <recipient> [--json]
       mx6ctl book import <recipient> <file>

A recipient's address book: senders (or whole @domains, with their
subdomains) whose authenticated mail to that recipient is trusted over
IPv6. Stored as the set mx6:book:<recipient>.

The recipient is normalised as mx6-receive looks it up: lower case, the
domain as A-label, and the sub-address after recipient_delimiter (from
mx6-receive.ini, default "+") dropped, so bob+lists@example.com uses
bob@example.com's book. Senders are normalised the same way, without
dropping any sub-address.

  add     adds senders (all or none: any invalid one refuses the lot)
  rm      removes senders (exit 1 when none of them was there)
  ls      lists the book, sorted; --json prints
          {"recipient": "<normalised>", "key": "<key>", "members": ["<member>", ...]}
  import  adds every address of a CSV file (a header row with an
          "Email", "E-mail Address", "Primary Email"... column, or one
          address per line) or a vCard file (.vcf, detected by its
          BEGIN:VCARD), in one SADD. Prints "imported N, skipped M
          (reasons)". Files over ${MAX_FILE_BYTES / 1024 / 1024} MB are refused.

Exit status: 0 done; 1 Redis trouble, rm of senders none of which were
there, or an import file without any address; 2 invalid input (a bad
recipient or sender, a missing, unreadable or oversized file) or usage,
with one line on stderr.
`

export const bookCommand: Command = {
  summary: "manage a recipient's address book (add, rm, ls, import CSV/vCard)",
  help: HELP,
  async run(argv, io, global) {
    const [action, ...rest] = argv
    if (action === 'add' || action === 'rm') return addRm(action, rest, io, global)
    if (action === 'ls') return ls(rest, io, global)
    if (action === 'import') return importFile(rest, io, global)
    throw new UsageError(action ? `unknown action "${action}" (add, rm, ls or import)` : 'missing action (add, rm, ls or import)')
  },
}

/**
 * The normalised owner (with a note when it differs from what was typed) and the
 * settings it was normalised with: checked before connecting, so bad input is exit 2.
 */
function owner(global: GlobalOptions, text: string, io: Io): { rcpt: string; receive: ReceiveConfig } {
  const receive = loadReceiveConfig(global, io)
  const r = normaliseRecipient(text, receive.recipientDelimiter)
  if ('error' in r) throw new UsageError(`recipient ${quote(text)}: ${r.error}`)
  if (r.changed) io.out(`note: recipient ${quote(text)} normalised to ${r.value} (as mx6-receive looks it up)`)
  return { rcpt: r.value, receive }
}

async function addRm(action: 'add' | 'rm', argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { positionals } = parse(argv, {})
  const [recipient, ...members] = positionals
  if (!recipient || members.length === 0) throw new UsageError(`${action} needs a recipient and at least one sender or @domain`)
  const normalised: string[] = []
  const remarks: string[] = []
  for (const m of members) {
    const n = normaliseMember(m)
    if ('error' in n) throw new UsageError(`${quote(m)}: ${n.error}`)
    if (n.changed) remarks.push(`note: ${quote(m)} normalised to ${n.value}`)
    normalised.push(n.value)
  }
  const unique = [...new Set(normalised)]
  const { rcpt, receive } = owner(global, recipient, io)
  return withRedis(global, io, async (ctx) => {
    for (const r of remarks) io.out(r)
    const key = ctx.keys.book(rcpt)
    const r = (await ctx.redis.multi().smismember(key, ...unique)[action === 'add' ? 'sadd' : 'srem'](key, ...unique).scard(key).exec()) ?? []
    const present = value<number[]>(r[0])
    value(r[1])
    const size = value<number>(r[2])
    let missing = 0
    unique.forEach((m, i) => {
      const was = Number(present[i]) === 1
      if (action === 'add') io.out(was ? `${m} is already in the book of ${rcpt}` : `added ${m} to the book of ${rcpt}`)
      else if (was) io.out(`removed ${m} from the book of ${rcpt}`)
      else {
        missing++
        io.err(`mx6ctl book: ${m} is not in the book of ${rcpt}`)
      }
    })
    io.out(`${key}: ${size} ${size === 1 ? 'member' : 'members'}`)
    return action === 'rm' && missing === unique.length ? 1 : 0
  }, receive)
}

async function ls(argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } })
  if (positionals.length !== 1) throw new UsageError('ls needs exactly one recipient')
  const quiet: Io = values.json ? { out: () => undefined, err: io.err } : io
  const { rcpt, receive } = owner(global, positionals[0], quiet)
  return withRedis(global, io, async (ctx) => {
    const key = ctx.keys.book(rcpt)
    const type = await ctx.redis.type(key)
    if (type !== 'none' && type !== 'set') throw new CtlError(`${key} is a ${type}, not a set: every lookup in it fails (see mx6ctl lint)`)
    const members = [...(await scanSet(ctx, key))].sort(compareMembers)
    if (values.json) {
      io.out(JSON.stringify({ recipient: rcpt, key, members }, null, 2))
      return 0
    }
    if (members.length === 0) {
      io.out(`the book of ${rcpt} is empty (${key})`)
      return 0
    }
    io.out(`${key}: ${members.length} ${members.length === 1 ? 'member' : 'members'}`)
    for (const m of members) {
      const n = normaliseMember(m)
      const flag = 'error' in n ? `  [never matches: ${n.error}; see mx6ctl lint]` : n.value !== m ? `  [never matches: not normalised (${n.value}); see mx6ctl lint]` : ''
      io.out(`  ${shown(m)}${flag}`)
    }
    return 0
  }, receive)
}

/** Domains (@x) after addresses, each group by domain then local part. */
function compareMembers(a: string, b: string): number {
  const key = (m: string): string => {
    const at = m.lastIndexOf('@')
    return `${m.startsWith('@') ? '1' : '0'}${m.slice(at + 1)}\u0000${m.slice(0, at)}`
  }
  const x = key(a)
  const y = key(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** Reads at most MAX_FILE_BYTES of a regular file; one clear line (a UsageError, exit 2) otherwise. */
export function readBookFile(file: string): Buffer {
  let fd: number
  try {
    fd = fs.openSync(file, 'r')
  } catch (err) {
    throw fileError(file, err)
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new UsageError(`cannot read ${shown(file)}: not a regular file`)
    const limit = MAX_FILE_BYTES
    if (st.size > limit) throw new UsageError(`cannot read ${shown(file)}: too large (${(st.size / 1024 / 1024).toFixed(1)} MB; the limit is ${limit / 1024 / 1024} MB)`)
    const buf = Buffer.alloc(Math.min(st.size, limit) + 1)
    let len = 0
    for (;;) {
      const n = fs.readSync(fd, buf, len, buf.length - len, null)
      if (n === 0) break
      len += n
      if (len > limit) throw new UsageError(`cannot read ${shown(file)}: too large (the limit is ${limit / 1024 / 1024} MB)`)
      if (len === buf.length) break
    }
    return buf.subarray(0, len)
  } catch (err) {
    if (err instanceof CtlError) throw err
    throw fileError(file, err)
  } finally {
    fs.closeSync(fd)
  }
}

/** "skipped 3 (not an email address: lines 4, 9; no email address: line 7)". */
export function summary(r: ParseResult): string {
  const imported = `imported ${r.addresses.length}`
  if (r.skippedTotal === 0) return `${imported}, skipped 0`
  const byReason = Object.entries(r.reasons).sort((a, b) => b[1] - a[1])
  const parts = byReason.map(([reason, count]) => {
    const lines = r.skipped.filter((s) => s.reason === reason).map((s) => s.line)
    const shownLines = lines.slice(0, 5)
    const more = count > shownLines.length ? `, ... (${count} in all)` : ''
    return shownLines.length ? `${reason}: line${count > 1 ? 's' : ''} ${shownLines.join(', ')}${more}` : `${reason}: ${count}`
  })
  return `${imported}, skipped ${r.skippedTotal} (${parts.join('; ')})`
}

async function importFile(argv: string[], io: Io, global: GlobalOptions): Promise<number> {
  const { positionals } = parse(argv, {})
  if (positionals.length !== 2) throw new UsageError('import needs a recipient and a file')
  const [recipient, file] = positionals
  const parsed = parseAddressBook(decodeText(readBookFile(file)))
  const { rcpt, receive } = owner(global, recipient, io)
  return withRedis(global, io, async (ctx) => {
    const key = ctx.keys.book(rcpt)
    for (const n of parsed.notes) io.out(`note: ${n}`)
    io.out(summary(parsed) + (parsed.duplicates ? `; ${parsed.duplicates} duplicate${parsed.duplicates > 1 ? 's' : ''} counted once` : ''))
    if (parsed.addresses.length === 0) {
      io.err(`mx6ctl book: no address to import from ${file} (read as ${parsed.format === 'vcard' ? 'vCard' : 'CSV'})`)
      return 1
    }
    // One SADD, one round trip, whatever the size of the file.
    const r = (await ctx.redis.multi().sadd(key, ...parsed.addresses).scard(key).exec()) ?? []
    const added = value<number>(r[0])
    const size = value<number>(r[1])
    io.out(`${key}: ${added} new, ${size} ${size === 1 ? 'member' : 'members'} in all`)
    return 0
  }, receive)
}
