// How a decision is written down and answered: its log line, results entry, counter name
// and SMTP reply. The plugin and mx6ctl explain both use these, so explain prints the
// plugin's own line and reply.
import DSN from 'haraka-dsn'
import { authResultsLines } from '../lib/authres'
import { replyLines } from '../lib/reply'
import type { ReceiveConfig } from './config'
import type { Decision } from './decide'
import type { PeerSignals } from './peer-signals'
import { zoneText, type ZoneResult } from './reputation'

/** The peer signals in a few words, for the end of a decision's log line. */
export function signalsText(p: PeerSignals): string {
  const providers = p.providers?.length ? `; providers ${p.providers.map(zoneText).join(', ')}` : ''
  return ` [peer signals: fcrdns ${p.fcrdns.outcome} (${p.fcrdns.detail}); asn ${p.asn.outcome} (${p.asn.detail})${providers}]`
}

/**
 * A decision's log line, which is also the human summary of its results entry.
 * `subject`: the recipient at RCPT, e.g. " <bob@example.com>"; `ms`: the decision time,
 * which ends the line (the benchmarks read it there).
 */
export function decisionLine(phase: string, d: Decision, signals?: PeerSignals, subject = '', ms?: number, auth?: string): string {
  return `${phase}${subject} verdict=${d.verdict} rule=${d.rule}: ${d.reason}${auth ? ` [${auth}]` : ''}${signals ? signalsText(signals) : ''}${ms === undefined ? '' : ` (${ms.toFixed(3)} ms)`}`
}

/**
 * DMARC, ARC and the providers' domain zones as a decision's log line and results name them:
 * "dmarc=pass (...); arc=pass i=1 ...; dwl example.com: dnswl-domains dwl.dnswl.org 127.0.2.3 -> trusted".
 */
export function authText(o: { dmarc?: { authResults: string } | null; arc?: { reason: string } | null; domainZones?: readonly ZoneResult[] }): string | undefined {
  const zones = o.domainZones?.length ? o.domainZones.map((z) => `dwl ${z.subject}: ${zoneText(z)}`) : []
  const parts = [o.dmarc?.authResults, o.arc?.reason, ...zones].filter((p): p is string => !!p)
  return parts.length ? parts.join('; ') : undefined
}

/**
 * The haraka-results list a decision goes to: a would-defer of mode=observe is a message,
 * not a failure other plugins should act on.
 */
function resultList(v: Decision['verdict']): 'pass' | 'fail' | 'msg' {
  return v === 'trusted' || v === 'green' ? 'pass' : v === 'defer' || v === 'fallback' ? 'fail' : 'msg'
}

/** A decision's results entry: the line is its human summary (haraka-results would make one on every add). */
export function resultsEntry(phase: string, d: Decision, line: string, extra?: Record<string, string>): Record<string, string> {
  const entry: Record<string, string> = { verdict: d.verdict, rule: d.rule, phase, reason: d.reason, human: line, [resultList(d.verdict)]: `${phase}:${d.rule}` }
  if (d.override) entry.override = d.override
  return extra ? Object.assign(entry, extra) : entry
}

/**
 * The field of the day's counters hash for a decision: <phase>.<verdict>.<rule>; a provider's
 * rule names the provider (rcpt.trusted.dnswl:spamhaus), so that mx6ctl stats counts per provider.
 */
export function counterName(phase: string, d: Decision): string {
  return d.entry && (d.rule === 'dnswl' || d.rule === 'dwl') ? `${phase}.${d.verdict}.${d.rule}:${d.entry}` : `${phase}.${d.verdict}.${d.rule}`
}

/**
 * The deferral text for a decision: failed authentication says so; everything else (no
 * basis, Redis trouble) gets one and the same text, so that it never tells a prober
 * whether an address-book entry exists.
 */
export function deferText(cfg: ReceiveConfig['defer'], d?: Decision): string {
  return d?.rule === 'auth-fail' ? cfg.authFailText : cfg.text
}

/**
 * The deferral reply (a haraka-dsn reply, which Haraka renders with its enhanced status
 * code), made once per [defer] configuration and text: Haraka only reads it.
 */
export function deferReply(cfg: ReceiveConfig['defer'], d?: Decision): unknown {
  let made = deferReplies.get(cfg)
  if (!made) deferReplies.set(cfg, (made = new Map()))
  const text = deferText(cfg, d)
  let reply = made.get(text)
  if (!reply) {
    const [, subject, detail] = cfg.status.split('.').map(Number)
    made.set(text, (reply = DSN.create(cfg.code, replyLines(text), subject, detail)))
  }
  return reply
}
const deferReplies = new WeakMap<ReceiveConfig['defer'], Map<string, unknown>>()

/**
 * The MX6 "retry over IPv4" reply lines: the first line, the Authentication-Results this
 * receiver would have prepended (Haraka's own assembly of the spf, dkim ... results), and
 * the registration URL when configured. Each printable ASCII, at most 512 octets with its code.
 */
export function fallbackLines(cfg: ReceiveConfig['mx6'], authResults: string, host: string): string[] {
  return [
    ...replyLines(cfg.text),
    ...authResultsLines(authResults, cfg.authservId || host || 'localhost'),
    ...(cfg.registrationUrl ? replyLines(`To be accepted over IPv6, ask at ${cfg.registrationUrl}`) : []),
  ]
}

export function fallbackReply(cfg: ReceiveConfig['mx6'], authResults: string, host: string): unknown {
  const [, subject, detail] = cfg.status.split('.').map(Number)
  return DSN.create(cfg.code, fallbackLines(cfg, authResults, host), subject, detail)
}
