// Failed authentication, and what it vetoes (pure, like decide.ts).
//
// The seed: "Any message failing authentication ... need merely be given a temporary
// failure". A failed check therefore outweighs every *automatic* signal (FCrDNS, origin
// AS, IPv4 history, the last-resort SPF guess); only an entry an operator put in a list
// by hand still counts, and the decision then says that it overrode the failure.
import { aligned, type Alignment } from '../lib/domain'
import type { GreenRule } from './green'

/** SPF results (RFC 7208, lower case) that can be made to veto; pass and none never do. */
export const SPF_VETO_CHOICES = ['fail', 'softfail', 'neutral', 'temperror', 'permerror'] as const
export type SpfVeto = (typeof SPF_VETO_CHOICES)[number]

export interface AuthConfig {
  /**
   * SPF results of MAIL FROM that count as failed authentication. temperror and permerror
   * are in by default: uncertainty never accepts over IPv6 (the mail comes back over IPv4).
   * @default fail, softfail, temperror, permerror
   */
  spfVeto: readonly SpfVeto[]
  /** Evaluate the From domain's DMARC record after DATA (RFC 7489). @default true */
  dmarc: boolean
  /** Validate ARC chains of mail nothing else authenticates (RFC 8617); only sealers in arc:trusted count. @default true */
  arc: boolean
}

export const AUTH_DEFAULTS: AuthConfig = Object.freeze({ spfVeto: Object.freeze(['fail', 'softfail', 'temperror', 'permerror'] as SpfVeto[]), dmarc: true, arc: true })

/**
 * Rules that come from DNS, a provider or history, not from an operator's list entry. A
 * provider's zone is one even when the operator maps its answer to trusted: the operator
 * chose the provider, not the peer.
 */
const AUTOMATIC_GREEN: ReadonlySet<GreenRule> = new Set<GreenRule>(['fcrdns', 'asn:green', 'dnswl', 'dwl', 'history'])

export function isAutomatic(rule: string): boolean {
  return AUTOMATIC_GREEN.has(rule as GreenRule)
}

/**
 * The bases that outweigh failed authentication: entries an operator put in a list by hand
 * (forwarders without SRS, senders that never retry). An address book, learned from mail,
 * does not; nor does any automatic signal.
 */
const OPERATOR_RULES: ReadonlySet<string> = new Set(['ip:allow', 'ip:green', 'host:green', 'domain:allow', 'domain:green'])

export function canOverride(rule: string): boolean {
  return OPERATOR_RULES.has(rule)
}

/** What SPF says against the message: "spf=fail example.com", or null. */
export function spfFailure(spf: { result: string; domain: string | null; guess?: boolean } | null, cfg: AuthConfig): string | null {
  if (!spf || !(cfg.spfVeto as readonly string[]).includes(spf.result)) return null
  return `spf=${spf.result}${spf.domain ? ` ${safe(spf.domain)}` : ''}${spf.guess ? ' (last-resort guess)' : ''}`
}

/**
 * A DKIM signature of the From domain (aligned with it) that fails, with no passing
 * aligned signature beside it: "dkim=fail d=example.com for From example.com", or null.
 */
export function dkimFailure(fromDomain: string | null, dkimPass: readonly string[], dkimFail: readonly string[], mode: Alignment): string | null {
  if (!fromDomain || dkimFail.length === 0) return null
  const failing = dkimFail.filter((d) => aligned(d, fromDomain, mode))
  if (failing.length === 0 || dkimPass.some((d) => aligned(d, fromDomain, mode))) return null
  return `dkim=fail d=${[...new Set(failing)].join(',')} for From ${fromDomain}`
}

/** The words a decision that overrides a failure adds to its reason (and results). */
export function overrideText(failure: string, by: string): string {
  return `${failure} overridden by operator entry ${by}`
}

function safe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)
}
