// Non-canonical list entries never match: a periodic scan tells the operator, once per entry.
import type { Keys } from '../lib/keys'
import { lintHash } from '../lib/lint'
import type { RedisClient } from '../lib/redis'

export interface LintLog {
  warn(msg: string): void
  debug(msg: string): void
}

/** Scans now and every `intervalSec`; returns the stop function. */
export function startLintScan(client: RedisClient, keys: Keys, intervalSec: number, log: LintLog): () => void {
  const reported = new Set<string>()
  const lists = [
    [keys.ipAllow, 'ip'],
    [keys.ipGreen, 'ip'],
    [keys.domainAllow, 'domain'],
    [keys.domainGreen, 'domain'],
    [keys.hostGreen, 'domain'],
    [keys.arcTrusted, 'domain'],
  ] as const
  const run = async (): Promise<void> => {
    for (const [key, kind] of lists) {
      try {
        for (const p of await lintHash(client, key, kind)) {
          const id = `${key} ${p.entry}`
          if (reported.has(id)) continue
          reported.add(id)
          log.warn(`${key} entry "${p.entry}" never matches: ${p.problem}${p.fix ? `; canonical form: ${p.fix}` : ''}`)
        }
      } catch (err) {
        log.debug(`lint of ${key} skipped: ${(err as Error).message}`)
      }
    }
  }
  void run()
  const timer = setInterval(() => void run(), intervalSec * 1000)
  timer.unref()
  return () => clearInterval(timer)
}
