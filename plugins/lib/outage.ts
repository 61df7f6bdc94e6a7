// An outage (Redis away, DNS failing) in the log: one line when it starts, a summary at most
// once a minute while it lasts (how much it affected), one line when it ends; not a line per
// message.

export interface OutageLogger {
  error(msg: string): void
  info(msg: string): void
}

export class OutageLog {
  private since = 0
  private affected = 0
  private summarised = 0
  private timer: NodeJS.Timeout | null = null

  /**
   * `what`: what is out ("redis redis://127.0.0.1:6379/0"); `effect`: what that means for mail
   * ("IPv6 peers are deferred"); `unit`: what `hit()` counts ("decisions deferred").
   */
  constructor(
    readonly what: string,
    private readonly effect: string,
    private readonly unit: string,
    private readonly log: OutageLogger,
    private readonly everyMs = 60_000,
  ) {}

  get down(): boolean {
    return this.since > 0
  }

  /** A failure: the first one starts the outage (later ones only while none is under way). */
  fail(reason: string): void {
    if (this.since) return
    this.since = Date.now()
    this.affected = this.summarised = 0
    this.log.error(`${this.what}: ${reason}; ${this.effect} until it is back`)
    this.timer = setInterval(() => this.summary(), this.everyMs)
    this.timer.unref()
  }

  /** Something the outage affected (a decision deferred, a write dropped). */
  hit(): void {
    if (this.since) this.affected++
  }

  /** It works again: ends the outage, with what it affected in all. */
  ok(): void {
    if (!this.since) return
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    this.log.info(`${this.what}: back after ${seconds(Date.now() - this.since)}; ${this.affected} ${this.unit} meanwhile`)
    this.since = 0
  }

  close(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  private summary(): void {
    const n = this.affected - this.summarised
    this.summarised = this.affected
    this.log.error(`${this.what}: still unavailable after ${seconds(Date.now() - this.since)}; ${n} ${this.unit} in the last ${seconds(this.everyMs)}`)
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`
}

/**
 * The outage log of a plugin's name servers: a CachingResolver's `health`. `previous` is kept
 * while the servers are the same (a config reload), so that an outage under way ends in it.
 */
export function dnsOutageLog(servers: string[], effect: string, log: { logerror(m: string): void; loginfo(m: string): void }, previous?: OutageLog): OutageLog {
  const what = `dns ${servers.join(',') || '(no servers)'}`
  if (previous?.what === what) return previous
  previous?.close()
  return new OutageLog(what, effect, 'lookups without an answer', { error: (m) => log.logerror(m), info: (m) => log.loginfo(m) })
}
