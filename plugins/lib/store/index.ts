// The list store: what the decision core needs from Redis, behind a narrow interface (ListStore).
import type { Keys } from '../keys'
import { batch, isCluster, type RedisClient } from '../redis'
import { ClusterAttemptWriter, ScriptAttemptWriter, type AttemptWriter } from './attempts'
import { Counters } from './counters'
import { asStoreErrors, StoreUnavailableError, within } from './errors'
import { FIRST_FIELD, FIRST_FIELD_LUA, planLookup, readLookup } from './lookup'
import { PeerCache } from './peer-cache'
import type { AttemptRecord, ListCache, ListStore, LookupReply, LookupRequest, RedisStoreOptions } from './types'

export { markReturned, MAX_ATTEMPTS_PER_CALL, MAX_TRIMMED_PER_WRITE, RECORD_ATTEMPT_LUA } from './attempts'
export { today } from './counters'
export { StoreError, StoreReplyError, StoreTimeoutError, StoreUnavailableError } from './errors'
export { FIRST_FIELD_LUA } from './lookup'
export { isEmptyRequest, onlyCachedLists } from './types'
export type { AttemptRecord, Hit, History, ListCache, ListStore, LookupReply, LookupRequest, RedisStoreOptions } from './types'

export class RedisListStore implements ListStore {
  /** The peer list cache; answers undefined while it is off (Cluster, entries=0, tracking not confirmed). */
  readonly cache: ListCache
  private readonly peers: PeerCache
  private readonly attempts: AttemptWriter
  private readonly counters: Counters
  /** ip:allow and ip:green may share one script call: not on a Cluster, where they live in different slots. */
  private readonly oneCall: boolean
  /**
   * The client bounds every command itself within timeoutMs (createRedis sets commandTimeout):
   * no timer of ours, which costs a busy server measurable CPU. Never on a Cluster, whose
   * redirections and retries may take longer than one command's timeout.
   */
  private readonly clientBounds: boolean

  constructor(
    private readonly client: RedisClient,
    readonly keys: Keys,
    private readonly opts: RedisStoreOptions,
  ) {
    if (!(FIRST_FIELD in client.scriptsSet)) client.defineCommand(FIRST_FIELD, { lua: FIRST_FIELD_LUA })
    // Chosen once: an instanceof per decision costs a busy server measurable CPU.
    if (isCluster(client)) {
      this.oneCall = false
      this.clientBounds = false
      this.attempts = new ClusterAttemptWriter(client, keys, opts)
    } else {
      const own = client.options.commandTimeout
      this.oneCall = true
      this.clientBounds = typeof own === 'number' && own > 0 && own <= opts.timeoutMs
      this.attempts = new ScriptAttemptWriter(client, keys, opts)
    }
    this.counters = new Counters(client, keys, opts)
    this.peers = new PeerCache(client, keys, opts.peerCache)
    this.cache = this.peers
  }

  /** Whether the peer list cache is in use now (see RedisStoreOptions.peerCache). */
  get peerCacheOn(): boolean {
    return this.peers.on
  }

  async lookup(req: LookupRequest): Promise<LookupReply> {
    this.ready()
    const plan = planLookup(req, this.keys, this.peers, this.oneCall)
    const results = plan.cmds.length ? await this.bounded(batch(this.client, plan.cmds)) : []
    if (!results) throw new StoreUnavailableError('pipeline discarded')
    return readLookup(req, plan, results, this.peers)
  }

  recordAttempt(make: () => AttemptRecord, ttlSec: number, maxEntries: number): void {
    if (this.client.status === 'ready') this.attempts.record(make, ttlSec, maxEntries)
  }

  async spfGuess(domain: string): Promise<string | null> {
    this.ready()
    return this.bounded(this.client.hget(this.keys.spfGuess, domain))
  }

  count(fields: readonly string[]): void {
    this.counters.count(fields)
  }

  /** Writes the summed counters (also on close). Failures are reported, the counts dropped. */
  flush(): Promise<void> {
    return this.counters.flush()
  }

  async close(): Promise<void> {
    await this.attempts.flush()
    await this.counters.flush()
    this.peers.close()
    this.client.disconnect()
  }

  private ready(): void {
    if (this.client.status !== 'ready') throw new StoreUnavailableError(`redis not connected (${this.client.status})`)
  }

  /** The work within timeoutMs (else a StoreTimeoutError), its failures as StoreErrors. */
  private bounded<T>(work: Promise<T>): Promise<T> {
    return this.clientBounds ? asStoreErrors(work) : within(work, this.opts.timeoutMs)
  }
}
