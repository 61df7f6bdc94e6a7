// One Redis-backed resource per plugin (a client, a store), as haraka-plugin-redis gives its
// plugins one lifecycle: opened when first needed, replaced when its settings change on a
// config reload, closed on shutdown.
export class RedisResource<T> {
  private current: T | null = null
  private settings = ''

  constructor(
    private readonly open: () => T,
    private readonly close: (resource: T) => void,
    /** Whether the plugin needs it at all with its current settings (connected at start-up only then). */
    private readonly needed: () => boolean = () => true,
  ) {}

  /** From load_config: when `settings` (any JSON value) changed, the open resource is closed; the next get() opens one anew. */
  configure(settings: unknown): void {
    const s = JSON.stringify(settings)
    const reopen = this.current !== null && s !== this.settings
    this.settings = s
    // Reopened at once, so that the new connection is up before the next message needs it.
    if (reopen) {
      this.shutdown()
      this.warm()
    }
  }

  get(): T {
    this.current ??= this.open()
    return this.current
  }

  /** Opens it now when it is needed (at start-up, so that the first mail does not wait). */
  warm(): void {
    if (this.needed()) this.get()
  }

  /** The open resource, without opening one. */
  peek(): T | null {
    return this.current
  }

  shutdown(): void {
    const c = this.current
    this.current = null
    if (c) this.close(c)
  }
}

/** What a plugin that holds its Redis resource in `redis` is, for the hooks below. */
interface WithRedis {
  redis: RedisResource<unknown>
}

// The init and shutdown hooks of such a plugin: re-exported by each plugin module, so that
// Haraka connects in the master (nodes=0) or in each child, and closes on shutdown.
export function hook_init_master(this: WithRedis, next: () => void): void {
  this.redis.warm()
  next()
}

export function hook_init_child(this: WithRedis, next: () => void): void {
  this.redis.warm()
  next()
}

export function shutdown(this: WithRedis): void {
  this.redis.shutdown()
}
