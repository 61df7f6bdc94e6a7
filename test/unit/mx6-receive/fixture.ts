// The plugin as Haraka loads it (haraka-test-fixtures), with a table-driven store and resolver.
import { CachingResolver } from '../../../plugins/lib/dns'
import { RedisResource } from '../../../plugins/lib/lifecycle'
import { signalsSource } from '../../../plugins/mx6-receive/signals'
import type { FakeStore } from '../fake-store'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any

/** The plugin's store is `store`; its peer signals ask `resolver`. */
export function useStore(plugin: Any, store: FakeStore, resolver = new CachingResolver({ query: async () => ({ rcode: 3, answers: [], authorities: [] }) }, { negativeTtl: 0, maxTtl: 0 })): void {
  plugin.redis = new RedisResource(() => ({ store, close: () => undefined }), () => undefined)
  useResolver(plugin, resolver)
}

/** The plugin's peer signals ask `resolver`, with its current settings (what load_config does). */
export function useResolver(plugin: Any, resolver: CachingResolver): void {
  plugin.resolver = resolver
  plugin.signals = signalsSource(plugin.cfg, resolver)
}

