// Finding list entries that can never match because they are not in canonical form.
import { checkListEntry, type ListKind } from './entry'
import type { RedisClient } from './redis'

export interface EntryProblem {
  entry: string
  problem: string
  /** The canonical form, or the suggestion when the fix would change what the entry covers. */
  fix?: string
}

export function checkEntry(kind: ListKind, entry: string): EntryProblem | null {
  const c = checkListEntry(kind, entry)
  if (c.status === 'canonical') return null
  if (c.status === 'fixable') return { entry, problem: c.problem, fix: c.canonical }
  if (c.status === 'ambiguous') return { entry, problem: c.problem, fix: c.suggestion }
  return { entry, problem: c.problem }
}

/** Scans a list hash with HSCAN (never KEYS or HGETALL on the hot path). */
export async function lintHash(client: RedisClient, key: string, kind: ListKind): Promise<EntryProblem[]> {
  const type = await client.type(key)
  if (type === 'none') return []
  if (type !== 'hash') return [{ entry: key, problem: `key is a ${type}, not a hash: every lookup fails and IPv6 peers are deferred` }]
  const out: EntryProblem[] = []
  let cursor = '0'
  do {
    const [next, flat] = await client.hscan(key, cursor, 'COUNT', 1000)
    cursor = next
    for (let i = 0; i < flat.length; i += 2) {
      const p = checkEntry(kind, flat[i])
      if (p) out.push(p)
    }
  } while (cursor !== '0')
  return out
}
