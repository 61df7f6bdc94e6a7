// The delivery plan of mx6-send: which addresses to try, in which order.
// Pure: DNS answers in, an MX list for Haraka (or a reason to defer/bounce) out.
import type { Lookup, MxRecord } from '../lib/dns'
import { isServiceUnavailable, orderSrv, type Rng, type SrvRecord } from './srv'

export type { Lookup, MxRecord }

export interface PlanInput {
  domain: string
  /** After an MX6 fallback: the regular MX over IPv4 only, no SRV lookup. */
  v4only: boolean
  srv?: Lookup<SrvRecord>
  /** AAAA of each SRV target (and of each MX host when ipv6PlainMx). */
  aaaa: Map<string, Lookup<string>>
  mx: Lookup<MxRecord>
  /** A of each MX host (or of the domain for the implicit MX). */
  a: Map<string, Lookup<string>>
}

export interface PlanConfig {
  /** Use an SRV port other than 25 (otherwise 25 is used and the SRV port logged). */
  allowSrvPort: boolean
  /** Also deliver to plain MX hosts over IPv6 (their AAAA), after MX6 hosts. */
  ipv6PlainMx: boolean
}

export interface MxEntry {
  exchange: string
  port: number
  priority: number
  from_dns: string
  mx6: boolean
}

export type Plan =
  | { deliver: MxEntry[]; notes: string[] }
  | { defer: string; notes: string[] }
  | { bounce: string; nullMx: boolean; notes: string[] }

const why = (l: Lookup<unknown>): string => ('error' in l ? l.error : 'none' in l ? l.none.toUpperCase() : 'ok')

export function isNullMx(records: MxRecord[]): boolean {
  return records.length === 1 && records[0].priority === 0 && (records[0].exchange === '' || records[0].exchange === '.')
}

export function buildPlan(input: PlanInput, cfg: PlanConfig, rng?: Rng): Plan {
  const notes: string[] = []
  const out: MxEntry[] = []
  const seen = new Set<string>()
  const add = (ip: string, port: number, host: string, mx6: boolean): void => {
    const key = `[${ip}]:${port}`
    if (seen.has(key)) return
    seen.add(key)
    out.push({ exchange: ip, port, priority: out.length, from_dns: host, mx6 })
  }

  if (input.v4only) {
    notes.push('after an MX6 fallback: regular MX over IPv4 only')
  } else if (input.srv) {
    const srv = input.srv
    // A temporary SRV failure must not silently turn into plain-MX delivery.
    if ('error' in srv) return { defer: `SRV _mx6._tcp.${input.domain} lookup failed: ${srv.error}`, notes }
    if ('none' in srv) notes.push(`no _mx6._tcp SRV (${why(srv)}): regular MX over IPv4`)
    else if (isServiceUnavailable(srv.ok)) notes.push('_mx6._tcp SRV target "." (RFC 2782: not available): regular MX over IPv4')
    else {
      for (const rec of orderSrv(srv.ok, rng)) {
        let port = 25
        if (rec.port !== 25) {
          if (cfg.allowSrvPort) port = rec.port
          notes.push(`SRV ${rec.target} port ${rec.port}: ${cfg.allowSrvPort ? 'used (allow_srv_port)' : 'ignored, using 25'}`)
        }
        const addrs = input.aaaa.get(rec.target)
        if (!addrs || !('ok' in addrs)) {
          notes.push(`MX6 host ${rec.target}: no AAAA (${addrs ? why(addrs) : 'not looked up'})`)
          continue
        }
        for (const ip of addrs.ok) add(ip, port, rec.target, true)
      }
    }
  }

  const mx = input.mx
  let hosts: MxRecord[] = []
  if ('error' in mx) {
    if (out.length === 0) return { defer: `MX lookup for ${input.domain} failed: ${mx.error}`, notes }
    notes.push(`MX lookup failed (${mx.error}): MX6 hosts only for now`)
  } else if ('none' in mx && mx.none === 'nxdomain') {
    if (out.length === 0) return { bounce: `No such domain: ${input.domain}`, nullMx: false, notes }
    notes.push('domain has no MX (NXDOMAIN): MX6 hosts only')
  } else if ('none' in mx) {
    // RFC 5321 section 5.1: no MX records, the domain itself is the implicit MX.
    hosts = [{ priority: 0, exchange: input.domain }]
  } else if (isNullMx(mx.ok)) {
    // RFC 7505: the domain accepts no mail at all, whatever else it publishes.
    return { bounce: `Domain ${input.domain} sends and receives no email (NULL MX)`, nullMx: true, notes }
  } else {
    hosts = [...mx.ok].sort((x, y) => x.priority - y.priority)
  }

  for (const h of hosts) {
    const v6 = cfg.ipv6PlainMx && !input.v4only ? input.aaaa.get(h.exchange) : undefined
    if (v6 && 'ok' in v6) for (const ip of v6.ok) add(ip, 25, h.exchange, false)
    const v4 = input.a.get(h.exchange)
    if (v4 && 'ok' in v4) for (const ip of v4.ok) add(ip, 25, h.exchange, false)
    else notes.push(`MX host ${h.exchange}: no A (${v4 ? why(v4) : 'not looked up'})`)
  }
  if (out.length === 0) return { defer: `no usable address for ${input.domain} (MX6 hosts need AAAA, MX hosts need A${cfg.ipv6PlainMx ? ' or AAAA' : ''})`, notes }
  return { deliver: out, notes }
}
