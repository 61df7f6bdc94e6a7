// Greenlisting: weaker signals that let IPv6 mail in *subject to* content filters.
// Pure, like decide.ts. Each rule is a small function over facts and store
// answers; a further signal (e.g. registrar strictness) is one more entry in
// PEER_RULES or DOMAIN_RULES plus the lookup it needs, without touching the others.
import { allCandidates } from '../lib/domain'
import { candidatePrefixes } from '../lib/ip'
import type { History, LookupReply, LookupRequest } from '../lib/store'
import { hitText, printable } from '../lib/text'
import type { PeerSignals } from './peer-signals'
import { bestZone, zoneText, type ZoneResult } from './reputation'

export interface GreenConfig {
  ipGreen: boolean
  fcrdns: boolean
  hostGreen: boolean
  asn: boolean
  domainGreen: boolean
  history: { enabled: boolean; minCount: number; minDays: number; maxIdleDays: number }
}

export const GREEN_DEFAULTS: GreenConfig = {
  ipGreen: true,
  // Opt-in: any sender sets up forward-confirmed reverse DNS for its own addresses in
  // minutes; the seed calls such signals "a little less robust than competent whitelisting".
  fcrdns: false,
  hostGreen: true,
  asn: false,
  domainGreen: true,
  history: { enabled: true, minCount: 10, minDays: 30, maxIdleDays: 90 },
}

/** dnswl / dwl: a reputation provider's IPv6 / domain allowlist zone (reputation.ts). */
export type GreenRule = 'ip:green' | 'fcrdns' | 'host:green' | 'asn:green' | 'dnswl' | 'domain:green' | 'dwl' | 'history'

export interface GreenBasis {
  rule: GreenRule
  reason: string
  /** The list entry that holds, for the rules that are an operator's entry; the provider's name for dnswl and dwl. */
  entry?: string
  /** A provider answer the operator maps to trusted: the verdict is trusted, not green. */
  trusted?: boolean
}

/** A provider zone's verdict as a basis: trusted or green, named with the zone and its answer. */
function zoneBasis(rule: 'dnswl' | 'dwl', z: ZoneResult | null): GreenBasis | null {
  if (!z) return null
  const b: GreenBasis = { rule, reason: `${z.subject} listed by provider ${zoneText(z)}`, entry: z.provider }
  if (z.outcome === 'trusted') b.trusted = true
  return b
}



/** What the peer-level rules need from the store (nothing already known this transaction). */
export function planPeerGreen(ipv6: string, signals: PeerSignals | undefined, known: LookupReply, cfg: GreenConfig): LookupRequest {
  const req: LookupRequest = {}
  if (cfg.ipGreen && known.ipGreen === undefined) req.ipGreenCandidates = candidatePrefixes(ipv6)
  if (cfg.hostGreen && known.hostGreen === undefined && signals?.fcrdns.confirmed.length) {
    req.hostGreenCandidates = allCandidates(signals.fcrdns.confirmed)
  }
  if (cfg.asn && known.asnGreen === undefined && signals?.asn.asns.length) req.asnGreenCandidates = signals.asn.asns
  return req
}

type PeerRule = (ipv6: string, s: PeerSignals | undefined, a: LookupReply, cfg: GreenConfig) => GreenBasis | null

/**
 * The peer-level rules in order: the operator's own entries before the automatic (DNS)
 * signals, so that the basis found is an operator's whenever one holds (only those
 * outweigh failed authentication, see auth.ts).
 */
const PEER_RULES: PeerRule[] = [
  (ip, _s, a) => (a.ipGreen ? { rule: 'ip:green', reason: `${ip} in ip:green ${hitText(a.ipGreen)}`, entry: a.ipGreen.entry } : null),
  (_ip, s, a) => (a.hostGreen && s ? { rule: 'host:green', reason: `forward-confirmed ${s.fcrdns.confirmed.join(',')} in host:green ${hitText(a.hostGreen)}`, entry: a.hostGreen.entry } : null),
  (_ip, s) => zoneBasis('dnswl', bestZone(s?.providers)),
  (_ip, s, _a, cfg) => (cfg.fcrdns && s?.fcrdns.outcome === 'pass' ? { rule: 'fcrdns', reason: s.fcrdns.detail } : null),
  (_ip, s, a) => (a.asnGreen && s ? { rule: 'asn:green', reason: `${s.asn.detail} in asn:green ${hitText(a.asnGreen)}` } : null),
]

/** The first peer-level greenlisting rule that holds, or null. */
export function peerGreen(ipv6: string, signals: PeerSignals | undefined, answers: LookupReply, cfg: GreenConfig): GreenBasis | null {
  for (const rule of PEER_RULES) {
    const b = rule(ipv6, signals, answers, cfg)
    if (b) return b
  }
  return null
}

/**
 * Lookups for authenticated domains: domain:green candidates and their IPv4 history.
 * `candidates`: the domains' parent candidates when the caller has them already.
 */
export function planDomainGreen(domains: string[], cfg: GreenConfig, candidates?: string[]): LookupRequest {
  const req: LookupRequest = {}
  if (domains.length === 0) return req
  if (cfg.domainGreen) req.domainGreenCandidates = candidates ?? allCandidates(domains)
  if (cfg.history.enabled) req.historyDomains = [...new Set(domains)]
  return req
}

/** A domain earns history green by volume, age and recency of authenticated IPv4 mail. */
export function historyPasses(h: History, nowSec: number, cfg: GreenConfig['history']): string | null {
  const days = (s: number) => Math.floor(s / 86400)
  if (h.count < cfg.minCount) return null
  if (nowSec - h.first < cfg.minDays * 86400) return null
  if (nowSec - h.last > cfg.maxIdleDays * 86400) return null
  return `${h.domain}: ${h.count} authenticated messages over IPv4 in ${days(nowSec - h.first)} days, last ${days(nowSec - h.last)} days ago`
}

/**
 * The first domain-level rule that holds for authenticated domains, or null: the operator's
 * domain:green, a provider's domain zone (`zones`: their answers for those domains), IPv4 history.
 */
export function domainGreen(answers: LookupReply, nowSec: number, cfg: GreenConfig, zones?: readonly ZoneResult[]): GreenBasis | null {
  if (answers.domainGreen) return { rule: 'domain:green', reason: `authenticated domain in domain:green ${hitText(answers.domainGreen)}`, entry: answers.domainGreen.entry }
  const dwl = zoneBasis('dwl', bestZone(zones))
  if (dwl) return dwl
  if (cfg.history.enabled) {
    for (const h of answers.history ?? []) {
      const why = h ? historyPasses(h, nowSec, cfg.history) : null
      if (why) return { rule: 'history', reason: `IPv4 history of ${why}` }
    }
  }
  return null
}

/** Each greenlisting list lookup of a transaction: hit (with the entry), miss, or n/a (not asked). */
export function greenSummary(k: Omit<LookupReply, 'books'>): string {
  const one = (name: string, h: LookupReply['ipGreen']) => `${name}=${h === undefined ? 'n/a' : h ? `hit(${printable(h.entry, 60)})` : 'miss'}`
  const hist = k.history === undefined ? 'n/a' : k.history.map((h) => (h ? `${h.domain}:${h.count}` : 'none')).join(',')
  return [one('ip:green', k.ipGreen), one('host:green', k.hostGreen), one('asn:green', k.asnGreen), one('domain:green', k.domainGreen), `history=${hist}`].join(' ')
}
