// The peer's DNS signals as the plugin gathers them: looked up once per connection
// (started at connect when RCPT waits for them, else at the first RCPT), through the memo
// of the current resolver and settings, with the connection's HELO applied.
import type { Connection } from '../lib/haraka'
import type { CachingResolver } from '../lib/dns'
import type { ReceiveConfig } from './config'
import { matchHelo, PeerSignalsMemo, type PeerSignals, type SignalsConfig } from './peer-signals'
import { signalsText } from './record'
import { zoneText, type ZoneConfig, type ZoneTroubleLog } from './reputation'
import { connectionState } from './state'

export interface SignalsSource {
  memo: PeerSignalsMemo
  heloMatch: ReceiveConfig['signals']['heloMatch']
  /** Where a provider zone's trouble is logged (once per zone per interval). */
  trouble?: ZoneTroubleLog
}

/** The providers' IPv6 allowlist zones. */
export function ipZones(cfg: ReceiveConfig): ZoneConfig[] {
  return cfg.providers.filter((z) => z.kind === 'ip')
}

/** The providers' domain allowlist zones (asked for authenticated domains only). */
export function domainZones(cfg: ReceiveConfig): ZoneConfig[] {
  return cfg.providers.filter((z) => z.kind === 'domain')
}

/** What the peer's DNS lookups cover under a configuration. */
export function signalsConfig(cfg: ReceiveConfig): SignalsConfig {
  const g = cfg.policy.green
  return { fcrdns: g.fcrdns || g.hostGreen, asn: g.asn, asnZone: cfg.signals.asnZone, zones: ipZones(cfg) }
}

/** The source for a configuration and resolver; null when no DNS signal is enabled. */
export function signalsSource(cfg: ReceiveConfig, resolver: CachingResolver): SignalsSource | null {
  const s = signalsConfig(cfg)
  if (!s.fcrdns && !s.asn && !s.zones?.length) return null
  return { memo: new PeerSignalsMemo(resolver, s), heloMatch: cfg.signals.heloMatch }
}

/**
 * Whether the peer's lookups start as it connects: when RCPT waits for them
 * (undecided=defer), and whenever a provider zone is configured, so that its answer is in
 * by the time a decision needs it.
 */
export function lookupsAtConnect(cfg: ReceiveConfig): boolean {
  return cfg.policy.undecided === 'defer' || ipZones(cfg).length > 0
}

/**
 * The connection's peer signals with its current HELO applied; the lookups start on the
 * first call and are recorded once in the connection results (`record`). Never rejects:
 * DNS trouble is an `err` outcome.
 */
export async function connectionSignals(source: SignalsSource | null, connection: Connection, ipv6: string, record: (entry: Record<string, string>) => void): Promise<PeerSignals | undefined> {
  if (!source) return undefined
  const state = connectionState(connection)
  state.dns ??= source.memo.gather(ipv6).catch(() => undefined)
  const dns = await state.dns
  if (!dns) return undefined
  const signals: PeerSignals = { fcrdns: matchHelo(dns.fcrdns, connection.hello?.host, source.heloMatch), asn: dns.asn, providers: dns.providers }
  state.fcrdnsName = signals.fcrdns.confirmed[0] ?? ''
  if (!state.recorded) {
    state.recorded = true
    const entry: Record<string, string> = { fcrdns: `${signals.fcrdns.outcome}: ${signals.fcrdns.detail}`, asn: `${signals.asn.outcome}: ${signals.asn.detail}`, human: `peer signals:${signalsText(signals)}` }
    if (signals.providers?.length) entry.providers = signals.providers.map(zoneText).join('; ')
    record(entry)
    for (const p of signals.providers ?? []) source.trouble?.report(p)
  }
  return signals
}
