// The peer's DNS signals as the plugin gathers them: looked up once per connection
// (started at connect when RCPT waits for them, else at the first RCPT), through the memo
// of the current resolver and settings, with the connection's HELO applied.
import type { Connection } from '../lib/haraka'
import type { CachingResolver } from '../lib/dns'
import type { ReceiveConfig } from './config'
import { matchHelo, PeerSignalsMemo, type PeerSignals } from './peer-signals'
import { signalsText } from './record'
import { connectionState } from './state'

export interface SignalsSource {
  memo: PeerSignalsMemo
  heloMatch: ReceiveConfig['signals']['heloMatch']
}

/** The source for a configuration and resolver; null when no DNS signal is enabled. */
export function signalsSource(cfg: ReceiveConfig, resolver: CachingResolver): SignalsSource | null {
  const g = cfg.policy.green
  if (!g.fcrdns && !g.hostGreen && !g.asn) return null
  return { memo: new PeerSignalsMemo(resolver, { fcrdns: g.fcrdns || g.hostGreen, asn: g.asn, asnZone: cfg.signals.asnZone }), heloMatch: cfg.signals.heloMatch }
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
  const signals: PeerSignals = { fcrdns: matchHelo(dns.fcrdns, connection.hello?.host, source.heloMatch), asn: dns.asn }
  state.fcrdnsName = signals.fcrdns.confirmed[0] ?? ''
  if (!state.recorded) {
    state.recorded = true
    record({ fcrdns: `${signals.fcrdns.outcome}: ${signals.fcrdns.detail}`, asn: `${signals.asn.outcome}: ${signals.asn.detail}`, human: `peer signals:${signalsText(signals)}` })
  }
  return signals
}
