// Finding list entries that can never match because they are not in canonical form.
import type { RedisClient } from './redis'
import { canonicalDomain, isPublicSuffix } from './domain'
import { checkV6Entry } from './ip'

export interface EntryProblem {
  entry: string
  problem: string
  fix?: string
}

export function checkEntry(kind: 'ip' | 'domain', entry: string): EntryProblem | null {
  if (kind === 'ip') {
    const c = checkV6Entry(entry)
    return c.ok ? null : { entry, problem: c.error, fix: c.fix }
  }
  const canonical = canonicalDomain(entry)
  // An entry covers its subdomains: a public suffix would cover every domain under it.
  if (canonical && isPublicSuffix(canonical)) return { entry, problem: 'a public suffix: it would cover every domain registered under it' }
  if (canonical === entry) return null
  if (!canonical) return { entry, problem: 'not a valid domain name' }
  return { entry, problem: 'not in canonical form (lower-case A-label, no trailing dot)', fix: canonical }
}

/** Scans a list hash with HSCAN (never KEYS or HGETALL on the hot path). */
export async function lintHash(client: RedisClient, key: string, kind: 'ip' | 'domain'): Promise<EntryProblem[]> {
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
