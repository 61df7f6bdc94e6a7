// Gathers the DNS answers buildPlan() needs, in two parallel rounds.
import type { CachingResolver } from '../lib/dns'
import { isNullMx, type Lookup, type MxRecord, type PlanConfig, type PlanInput } from './plan'
import { isServiceUnavailable, type SrvRecord } from './srv'

export async function gatherPlanInput(domain: string, v4only: boolean, dns: CachingResolver, cfg: PlanConfig): Promise<PlanInput> {
  const [srv, mx] = await Promise.all([v4only ? undefined : dns.srv(`_mx6._tcp.${domain}`), dns.mx(domain)])
  const targets = srv && 'ok' in srv && !isServiceUnavailable(srv.ok) ? srv.ok.map((r: SrvRecord) => r.target) : []
  const hosts = mxHosts(domain, mx)
  const aaaaNames = [...new Set([...targets, ...(cfg.ipv6PlainMx && !v4only ? hosts : [])])]
  const [aaaa, a] = await Promise.all([
    Promise.all(aaaaNames.map(async (n) => [n, await dns.aaaa(n)] as const)),
    Promise.all(hosts.map(async (n) => [n, await dns.a(n)] as const)),
  ])
  return { domain, v4only, srv, mx, aaaa: new Map(aaaa), a: new Map(a) }
}

function mxHosts(domain: string, mx: Lookup<MxRecord>): string[] {
  if ('ok' in mx) return isNullMx(mx.ok) ? [] : [...new Set(mx.ok.map((r) => r.exchange))]
  if ('none' in mx && mx.none === 'nodata') return [domain]
  return []
}
