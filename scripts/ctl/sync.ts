// mx6ctl sync: a provider's list file kept in a list hash as a named source (sync-lines.ts
// reads and lints it, sync-apply.ts stages and applies it), sync ls, sync rm.
import fs from 'node:fs'
import { CtlError, parse, stdio, UsageError, type Command, type Io } from './command'
import type { Context } from './context'
import { listKey } from './lists'
import { sourceTag } from './source-tag'
import { applyStage, EXAMPLES, runId, Stager } from './sync-apply'
import { figuresLine, lineBatches, maxRejected, progressLine, ReadTally, target, withinRejected, type Figures, type LintOptions, type SyncTarget } from './sync-lines'
import { syncLs, syncRm } from './sync-admin'
import { fileError, shown, withRedis } from './shared'

const HELP = `Usage: mx6ctl sync <allow|green> <ip|domain> <source> <file|-> [--dry-run]
         [--max-rejected N] [--force] [--allow-empty] [--verbose] [--json]
       mx6ctl sync ls [--json]
       mx6ctl sync rm <allow|green> <ip|domain> <source> [--dry-run] [--json]

Imports a provider's list file into mx6:ip:allow, mx6:ip:green,
mx6:domain:allow or mx6:domain:green as the named source <source>
([a-z0-9][a-z0-9._-], at most 32 characters), and keeps it in sync: each run
makes the source's entries exactly those of the file. Entries the source adds
have the note "source:<source>"; the source's entries are also kept in the set
mx6:src:{<list key>}:<source>. Entries added by hand and other sources'
entries are never changed: an entry already in the list with another note is
left alone ("owned elsewhere"); an entry of the source that you removed with
mx6ctl allow|green ... rm stays out while the provider lists it ("withheld").
The change is applied by one Redis script: lookups see the list before or
after the run, never half of it.

The file (- for standard input): one entry per line; blank lines and
comments (# or ; at the start of a line or after white space) are ignored.
Every entry is checked like mx6ctl allow|green ... add: IPv6 addresses and
CIDRs (host bits set refused, wider than a /16 refused without --force, no
IPv4), lower-case A-label domains; other spellings are written in canonical
form. Duplicates are counted, not errors. A rejected line is reported on
stderr as <file>:<line>: <reason> (the first 20); with any rejected line
nothing is changed, unless --max-rejected N allows up to N of them (they are
skipped). A file without entries is refused for a source that has entries (a
truncated download must not empty it) unless --allow-empty.

  --dry-run        changes nothing: prints the figures and up to ${EXAMPLES} of the
                   entries it would add and remove
  --max-rejected N skip up to N rejected lines instead of refusing the file
  --force          accept IP entries wider than a /16
  --allow-empty    let a file without entries remove all of the source's
  --verbose        print the figures when not on a terminal too (on a terminal
                   a progress line and the figures are shown; under cron the
                   command says nothing unless something is wrong)
  --json           {"list", "kind", "source", "key", "dryRun", "added",
                   "removed", "kept", "ownedElsewhere", "withheld",
                   "rejected", "duplicates", "lines", "entries",
                   "rewritten", "private", "owned", "seconds",
                   "scriptSeconds"} (with --dry-run also "addedExamples",
                   "removedExamples")

Figures: sync <list> <kind> <source>: added A, removed R, kept K, owned
elsewhere O, withheld W, rejected X, duplicates D (N lines, T s).

  ls   the sources: list, entries, time and figures of the last run; --json
       {"key", "sources": [{"list", "kind", "source", "key", "entries",
       "last": {"time", "added", ...} | null}]}
  rm   removes exactly the entries the source still owns (not the ones
       owned elsewhere), then forgets the source; --dry-run counts them

Exit status: 0 applied, or nothing to change; 1 rejected lines beyond
--max-rejected, an empty file for a source with entries, an unreadable
file, or Redis trouble (one line on stderr; nothing changed); 2 usage.
`

export const syncCommand: Command = {
  summary: 'keep a provider list file in a list as a named source',
  help: HELP,
  async run(argv, io, global) {
    if (argv[0] === 'ls') return syncLs(argv.slice(1), io, global)
    if (argv[0] === 'rm') return syncRm(argv.slice(1), io, global)
    const { values, positionals } = parse(argv, {
      'dry-run': { type: 'boolean' },
      'max-rejected': { type: 'string' },
      force: { type: 'boolean' },
      'allow-empty': { type: 'boolean' },
      verbose: { type: 'boolean' },
      json: { type: 'boolean' },
    })
    const t = target(positionals)
    const file = positionals[3]
    if (file === undefined) throw new UsageError('missing the file (- for standard input)')
    if (positionals.length > 4) throw new UsageError('sync takes one file')
    const opts = { dry: !!values['dry-run'], max: maxRejected(values['max-rejected']), force: !!values.force, allowEmpty: !!values['allow-empty'], verbose: !!values.verbose, json: !!values.json }
    const input = await openInput(file)
    const tty = io === stdio && !!process.stderr.isTTY
    try {
      return await withRedis(global, io, (ctx) => sync(ctx, t, input, opts, io, tty))
    } finally {
      input.close?.()
    }
  },
}

interface Input {
  name: string
  chunks: AsyncIterable<string | Buffer>
  /** Closes a file that was opened (whether or not it was read to the end). */
  close?: () => void
}

/** The file opened now (so a missing file fails before Redis is touched), streamed later. */
async function openInput(file: string): Promise<Input> {
  if (file === '-') {
    process.stdin.setEncoding('utf8')
    return { name: '<stdin>', chunks: process.stdin }
  }
  try {
    const h = await fs.promises.open(file, 'r')
    // Pipes are fine (process substitution, a FIFO); a directory is not.
    if ((await h.stat()).isDirectory()) {
      await h.close()
      throw new CtlError(`cannot read ${shown(file)}: is a directory`)
    }
    const stream = h.createReadStream({ encoding: 'utf8', highWaterMark: 256 * 1024 })
    return { name: file, chunks: stream, close: () => void stream.destroy() }
  } catch (err) {
    // Unlike book import (exit 2), a missing provider file is a failed run, not a usage error: cron reports 1.
    throw err instanceof CtlError ? err : new CtlError(fileError(file, err).message)
  }
}

interface Options {
  dry: boolean
  max: number
  force: boolean
  allowEmpty: boolean
  verbose: boolean
  json: boolean
}

async function sync(ctx: Context, t: SyncTarget, input: Input, o: Options, io: Io, tty: boolean): Promise<number> {
  const started = process.hrtime.bigint()
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9
  const list = listKey(ctx.keys, t.list, t.kind) as string
  const keys = { list, source: ctx.keys.source(list, t.source), stage: ctx.keys.sourceStage(list, t.source, runId()) }
  const type = await ctx.redis.type(list)
  if (type !== 'none' && type !== 'hash') throw new CtlError(`${list} is a ${type}, not a hash: every lookup in it fails (see mx6ctl lint); nothing changed`)
  const lint: LintOptions = { list: t.list, kind: t.kind, force: o.force, skipPrivate: ctx.receive.policy.skipPrivate }
  const tally = new ReadTally()
  const stager = new Stager(ctx.redis, keys.stage)
  let applied = false
  let shownAt = 0
  const progress = (final: boolean) => {
    if (!tty) return
    const now = Date.now()
    if (!final && now - shownAt < 250) return
    shownAt = now
    process.stderr.write(final ? '\r\x1b[K' : `\r${progressLine(tally.lines, elapsed())}\x1b[K`)
  }
  try {
    const reader = lineBatches(input.chunks)
    try {
      for (;;) {
        const next = await reader.next().catch((err: Error) => {
          throw new CtlError(`cannot read ${shown(input.name)} after line ${tally.lines}: ${err.message}; nothing changed`)
        })
        if (next.done) break
        for (const line of next.value) {
          const entry = tally.feed(line, lint)
          // Past the budget nothing will be applied: go on reading only to count and report.
          if (entry !== null && withinRejected(tally.rejectedCount, o.max)) stager.add(entry)
        }
        await stager.drain()
        progress(false)
      }
    } finally {
      progress(true)
    }
    await stager.flush()
    for (const l of tally.report(input.name)) io.err(l)
    if (!withinRejected(tally.rejectedCount, o.max)) {
      const n = tally.rejectedCount
      throw new CtlError(`${n} rejected line${n === 1 ? '' : 's'} in ${shown(input.name)}${o.max ? ` (at most ${o.max} allowed by --max-rejected)` : ' (--max-rejected N skips up to N)'}; nothing changed`)
    }
    if (tally.entries === 0 && !o.allowEmpty) {
      const had = await ctx.redis.scard(keys.source)
      if (had > 0) throw new CtlError(`no entries in ${shown(input.name)}: refusing to remove all ${had} entries of source ${t.source} (a truncated download?); --allow-empty if you mean it; nothing changed`)
    }
    const r = await applyStage(ctx.redis, keys, sourceTag(t.source), o.dry)
    applied = true
    const f: Figures = {
      ...t,
      added: r.added,
      removed: r.removed,
      kept: r.kept,
      ownedElsewhere: r.ownedElsewhere,
      withheld: r.withheld,
      rejected: tally.rejectedCount,
      duplicates: tally.entries - stager.distinct,
      lines: tally.lines,
      entries: tally.entries,
      rewritten: tally.rewritten,
      private: tally.private,
      owned: r.owned,
      seconds: elapsed(),
      scriptSeconds: r.scriptSeconds,
      dryRun: o.dry,
    }
    if (!o.dry) {
      const last = { time: new Date().toISOString(), file: input.name, ...pick(f) }
      await ctx.redis.hset(ctx.keys.sources, `${t.list}:${t.kind}:${t.source}`, JSON.stringify(last))
    }
    if (o.json) {
      io.out(JSON.stringify({ list: f.list, kind: f.kind, source: f.source, key: list, ...withoutTarget(f), ...(o.dry ? { addedExamples: r.addedExamples, removedExamples: r.removedExamples } : {}) }, null, 2))
      return 0
    }
    if (o.dry) {
      io.out(figuresLine(f))
      for (const e of r.addedExamples) io.out(`  + ${e}`)
      if (r.added > r.addedExamples.length) io.out(`  + … and ${r.added - r.addedExamples.length} more`)
      for (const e of r.removedExamples) io.out(`  - ${e}`)
      if (r.removed > r.removedExamples.length) io.out(`  - … and ${r.removed - r.removedExamples.length} more`)
    } else if (tty || o.verbose) io.out(figuresLine(f))
    if ((tty || o.verbose || o.dry) && f.private) {
      io.out(`note: ${f.private} ${f.private === 1 ? 'entry covers' : 'entries cover'} only peers Haraka calls private: mx6-receive skips them while [main] skip_private=true`)
    }
    if ((tty || o.verbose || o.dry) && f.rewritten) io.out(`note: ${f.rewritten} ${f.rewritten === 1 ? 'entry was' : 'entries were'} written in canonical form`)
    return 0
  } finally {
    if (!applied) await stager.discard().catch(() => undefined)
  }
}

/** The figures a run records in the sources registry. */
function pick(f: Figures): Record<string, number> {
  const { added, removed, kept, ownedElsewhere, withheld, rejected, duplicates, lines: n, entries, seconds } = f
  return { added, removed, kept, ownedElsewhere, withheld, rejected, duplicates, lines: n, entries, seconds: Math.round(seconds * 1000) / 1000 }
}

function withoutTarget(f: Figures): Omit<Figures, 'list' | 'kind' | 'source'> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { list, kind, source, ...rest } = f
  return rest
}
