// SRV target selection (RFC 2782, "Usage rules").

import type { SrvRecord } from '../lib/dns'

export type { SrvRecord }

/** Returns a number in [0, 1); injectable so tests can use a fixed seed. */
export type Rng = () => number

/** A small seeded generator (mulberry32) for reproducible tests. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** RFC 2782: a single record whose target is "." means the service is decidedly not available. */
export function isServiceUnavailable(records: SrvRecord[]): boolean {
  return records.length === 1 && (records[0].target === '' || records[0].target === '.')
}

/**
 * Orders SRV records for contact: ascending priority; within one priority, a
 * weighted random order: records of weight 0 first in the list, then repeatedly
 * pick the first record whose running weight sum reaches a random number in
 * [0, total], as RFC 2782 describes.
 */
export function orderSrv(records: SrvRecord[], rng: Rng = Math.random): SrvRecord[] {
  const byPriority = new Map<number, SrvRecord[]>()
  for (const r of records) {
    if (r.target === '' || r.target === '.') continue
    const list = byPriority.get(r.priority) ?? []
    list.push(r)
    byPriority.set(r.priority, list)
  }
  const out: SrvRecord[] = []
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    const left = [...byPriority.get(priority)!].sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1))
    while (left.length > 0) {
      const total = left.reduce((s, r) => s + r.weight, 0)
      const pick = Math.floor(rng() * (total + 1))
      let sum = 0
      let i = 0
      for (; i < left.length; i++) {
        sum += left[i].weight
        if (sum >= pick) break
      }
      out.push(left.splice(Math.min(i, left.length - 1), 1)[0])
    }
  }
  return out
}
