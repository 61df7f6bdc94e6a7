// Per-day decision counters (mx6:stats:YYYYMMDD), summed in memory and written once per
// flush interval off the decision path: a decision phase stays one Redis round trip.
import type { Keys } from '../keys'
import { batch, type RedisClient } from '../redis'
import { StoreUnavailableError } from './errors'
import type { Command, RedisStoreOptions } from './types'

/** The UTC day as the counters' keys name it: YYYYMMDD. */
export function today(now = new Date()): string {
  return now.toISOString().slice(0, 10).replace(/-/g, '')
}

export class Counters {
  private pending = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly client: RedisClient,
    private readonly keys: Keys,
    private readonly opts: Pick<RedisStoreOptions, 'statsDays' | 'flushMs' | 'onWriteError'>,
  ) {}

  count(fields: readonly string[]): void {
    for (const f of fields) this.pending.set(f, (this.pending.get(f) ?? 0) + 1)
    if (this.pending.size > 0 && !this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.opts.flushMs ?? 1000)
      this.timer.unref()
    }
  }

  /** Writes the summed counters. Failures are reported, the counts dropped. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.pending.size === 0) return
    const counts = this.pending
    this.pending = new Map()
    if (this.client.status !== 'ready') {
      this.opts.onWriteError?.('counters', new StoreUnavailableError(`redis not connected; ${counts.size} counters dropped`))
      return
    }
    const key = this.keys.stats(today())
    const cmds: Command[] = [...counts].map(([f, n]): Command => ['hincrby', key, f, n])
    cmds.push(['expire', key, this.opts.statsDays * 86400])
    await batch(this.client, cmds).catch((err: Error) => this.opts.onWriteError?.('counters', err))
  }
}
