// Where the plugin's session gets its facts: the store and list cache of its Redis
// connection, the connection's DNS signals, DMARC and ARC through the plugin's resolver; and
// what it reports on the way, into the log and the transaction results.
import type { Connection, Transaction } from '../lib/haraka'
import type { CachingResolver } from '../lib/dns'
import type { RedisResource } from '../lib/lifecycle'
import { printable } from '../lib/text'
import { evaluateArc, type ArcOutcome } from './arc'
import type { ReceiveConfig } from './config'
import { evaluateDmarc } from './dmarc'
import type { SessionEvent, Sources } from './session'
import { queryZones, type ZoneConfig, type ZoneResult, type ZoneTroubleLog } from './reputation'
import { connectionSignals, domainZones, type SignalsSource } from './signals'
import { evaluateGuess } from './spf-guess'
import type { StoreHandle } from './store-handle'

interface Plugin {
  cfg: ReceiveConfig
  resolver: CachingResolver
  signals: SignalsSource | null
  zoneTrouble?: ZoneTroubleLog
  redis: RedisResource<StoreHandle>
}

export function sources(plugin: Plugin, connection: Connection): Sources {
  const store = plugin.redis.get().store
  const signals = plugin.signals
  const zones = domainZones(plugin.cfg)
  return {
    store,
    cache: store.cache,
    peerSignals: (ipv6) => connectionSignals(signals, connection, ipv6, (e) => connection.results.add(plugin, e)),
    evaluateGuess,
    evaluateDmarc: (input) => evaluateDmarc(input, plugin.resolver, plugin.cfg.signals.dnsTimeoutMs),
    domainZones: zones.length ? (domains) => askDomainZones(zones, domains, plugin) : undefined,
    now: () => Math.floor(Date.now() / 1000),
    report: (e) => report(plugin, connection, e),
  }
}

/** The message's ARC chain: the message is read only when it has an ARC-Seal. */
export async function messageArc(plugin: Plugin, txn: Transaction, fromDomain: string): Promise<ArcOutcome | null> {
  if (txn.header.get_all('ARC-Seal').length === 0) return null
  const stream = (txn as Transaction & { message_stream: { get_data(cb: (b: Buffer) => void): void } }).message_stream
  const message = await new Promise<Buffer>((resolve) => stream.get_data(resolve))
  return evaluateArc(message, fromDomain, plugin.resolver, plugin.cfg.signals.dnsTimeoutMs)
}

/** Every domain zone for every domain, the answers in the results and any trouble in the log. */
async function askDomainZones(zones: ZoneConfig[], domains: readonly string[], plugin: Plugin): Promise<ZoneResult[]> {
  const results = (await Promise.all(domains.map((d) => queryZones(zones, d, plugin.resolver)))).flat()
  for (const r of results) plugin.zoneTrouble?.report(r)
  return results
}

function report(plugin: Plugin, connection: Connection, e: SessionEvent): void {
  const txn = connection.transaction
  const outage = plugin.redis.peek()?.outage
  if (e.kind === 'store-ok') return outage?.ok()
  if (e.kind === 'guess') {
    const g = e.guess
    txn?.results.add(plugin, { spf_guess: `${g.result} ${g.domain} (${g.source}: ${printable(g.record)})` })
    connection.loginfo(plugin, `last-resort SPF for ${g.domain} (${g.source} record "${printable(g.record)}"): ${g.result}`)
  } else if (e.kind === 'guess-error') {
    connection.logwarn(plugin, `last-resort SPF for ${e.domain} not evaluated: ${e.message}`)
  } else if (outage && (e.name === 'StoreUnavailableError' || e.name === 'StoreTimeoutError')) {
    // Redis away or too slow is an outage, logged once when it starts (then a summary a
    // minute); the transaction's results say it as a message (an `err` is logged each time).
    outage.fail(e.message)
    outage.hit()
    txn?.results.add(plugin, { msg: `store: ${e.message}` })
  } else {
    // Another failure (a key of the wrong type, say) is logged with its transaction.
    txn?.results.add(plugin, { err: `store: ${e.message}` })
    connection.logerror(plugin, `list lookup failed (${e.name}: ${e.message}); ${plugin.cfg.mode === 'observe' ? 'would defer (mode=observe)' : 'deferring'} IPv6 peer`)
  }
}

