// mx6ctl dns check: what a domain publishes for MX6, and what is wrong with it.
//
// gatherDnsFacts() asks DNS through the same CachingResolver that mx6-send uses;
// findProblems() is pure (facts in, problem lines out) so it is unit-tested
// without a name server.
import type { CachingResolver, Lookup, MxRecord, SrvRecord } from '../../plugins/lib/dns'
import { classifyPeer } from '../../plugins/lib/ip'
import { isNullMx } from '../../plugins/mx6-send/plan'
import { isServiceUnavailable } from '../../plugins/mx6-send/srv'

export type Status = 'ok' | 'nxdomain' | 'nodata' | 'error'

/** The answer to one address query (A or AAAA), as the report shows it. */
export interface Addresses {
  status: Status
  addresses: string[]
  /** The query, e.g. "AAAA mx6.example.com", and what went wrong (status error only). */
  query: string
  error?: string
}

export interface SrvTarget {
  priority: number
  weight: number
  port: number
  /** Without trailing dot; "" is the RFC 2782 "." target. */
  target: string
  aaaa?: Addresses
  a?: Addresses
}

export interface MxHost {
  priority: number
  exchange: string
  a: Addresses
  aaaa: Addresses
}

export interface DnsFacts {
  domain: string
  srv: { name: string; status: Status; error?: string; records: SrvTarget[] }
  mx: {
    status: Status
    error?: string
    /** RFC 7505: a single "0 ." record. */
    nullMx: boolean
    /** No MX records: the domain itself is the (RFC 5321 implicit) MX. */
    implicit: boolean
    hosts: MxHost[]
  }
}

export type ProblemCode =
  | 'dns-error'
  | 'no-srv'
  | 'srv-dot'
  | 'srv-port'
  | 'srv-no-aaaa'
  | 'mx6-on-mx'
  | 'no-domain'
  | 'null-mx'
  | 'mx-no-ipv4'
  | 'v6-before-v4'

export interface Problem {
  code: ProblemCode
  message: string
  hint?: string
}

/** Postfix's default smtp_mx_session_limit: SMTP sessions per delivery request. */
export const POSTFIX_SESSION_LIMIT = 2

function status<T>(l: Lookup<T>): Status {
  return 'ok' in l ? 'ok' : 'none' in l ? l.none : 'error'
}

/** "SRV x: SRV lookup rcode 2 (SERVFAIL)" without the repeated query in front. */
function errorText(query: string, error: string): string {
  const e = error.startsWith(`${query}: `) ? error.slice(query.length + 2) : error
  // One printable ASCII line (dns2 joins its per-server reasons with a dash).
  return e.replace(/\s*\u2014\s*/g, ': ').replace(/[^\x20-\x7e]/g, '?').slice(0, 300)
}

async function addresses(dns: CachingResolver, type: 'A' | 'AAAA', name: string): Promise<Addresses> {
  const l = type === 'A' ? await dns.a(name) : await dns.aaaa(name)
  const query = `${type} ${name}`
  const out: Addresses = { status: status(l), addresses: 'ok' in l ? l.ok : [], query }
  if ('error' in l) out.error = errorText(query, l.error)
  return out
}

/** Everything the check needs, in two parallel rounds (like mx6-send's resolve.ts). */
export async function gatherDnsFacts(domain: string, dns: CachingResolver): Promise<DnsFacts> {
  const srvName = `_mx6._tcp.${domain}`
  const [srv, mx] = await Promise.all([dns.srv(srvName), dns.mx(domain)])
  const records: SrvTarget[] = 'ok' in srv ? srv.ok.map((r: SrvRecord) => ({ ...r, target: r.target === '.' ? '' : r.target })) : []
  const nullMx = 'ok' in mx && isNullMx(mx.ok)
  const implicit = 'none' in mx && mx.none === 'nodata'
  const mxList: MxRecord[] = 'ok' in mx && !nullMx ? [...mx.ok].sort((x, y) => x.priority - y.priority) : implicit ? [{ priority: 0, exchange: domain }] : []
  const [, hosts] = await Promise.all([
    Promise.all(
      records
        .filter((r) => r.target !== '')
        .map(async (r) => {
          ;[r.aaaa, r.a] = await Promise.all([addresses(dns, 'AAAA', r.target), addresses(dns, 'A', r.target)])
        }),
    ),
    Promise.all(mxList.map(async (m): Promise<MxHost> => ({ ...m, a: await addresses(dns, 'A', m.exchange), aaaa: await addresses(dns, 'AAAA', m.exchange) }))),
  ])
  const facts: DnsFacts = {
    domain,
    srv: { name: srvName, status: status(srv), records },
    mx: { status: status(mx), nullMx, implicit, hosts },
  }
  if ('error' in srv) facts.srv.error = errorText(`SRV ${srvName}`, srv.error)
  if ('error' in mx) facts.mx.error = errorText(`MX ${domain}`, mx.error)
  return facts
}

const why = (s: Status): string => (s === 'nxdomain' ? 'NXDOMAIN' : s === 'nodata' ? 'NODATA' : s)

function canonical(addr: string): string {
  return classifyPeer(addr)?.canonical ?? addr
}

function hasV4(h: MxHost): boolean {
  return h.a.status === 'ok' && h.a.addresses.length > 0
}

function hasV6(h: MxHost): boolean {
  return h.aaaa.status === 'ok' && h.aaaa.addresses.length > 0
}

/** The problems of a domain's MX6 set-up, one line each, in a stable order. */
export function findProblems(f: DnsFacts): Problem[] {
  const out: Problem[] = []
  const d = f.domain
  const dnsError = (query: string, error: string | undefined): void =>
    void out.push({ code: 'dns-error', message: `DNS lookup ${query} failed: ${error ?? 'unknown error'}; the check is incomplete` })

  // DNS trouble first: every answer below it may be missing.
  if (f.srv.status === 'error') dnsError(`SRV ${f.srv.name}`, f.srv.error)
  if (f.mx.status === 'error') dnsError(`MX ${d}`, f.mx.error)
  for (const r of f.srv.records) for (const a of [r.aaaa, r.a]) if (a?.status === 'error') dnsError(a.query, a.error)
  for (const h of f.mx.hosts) for (const a of [h.a, h.aaaa]) if (a.status === 'error') dnsError(a.query, a.error)

  // The MX6 SRV record and its targets.
  if (f.srv.status === 'nxdomain' || f.srv.status === 'nodata') {
    out.push({
      code: 'no-srv',
      message: `no ${f.srv.name} SRV record (${why(f.srv.status)}): MX6 is not published, MX6-aware senders deliver to the regular MX over IPv4 only`,
      hint: `publish "${f.srv.name}. SRV 0 0 25 mx6.${d}." and an AAAA record for mx6.${d} (mx6ctl dns records prints the lines)`,
    })
  }
  const records = f.srv.records
  if (records.some((r) => r.target === '')) {
    out.push({
      code: 'srv-dot',
      message: isServiceUnavailable(records.map((r) => ({ ...r, target: r.target || '.' })))
        ? `${f.srv.name} SRV target "." (RFC 2782: service decidedly not available): MX6-aware senders deliver to the regular MX over IPv4 only`
        : `${f.srv.name} has a SRV record with target "." among others: senders ignore it`,
    })
  }
  const mxV6 = new Map<string, string>()
  for (const h of f.mx.hosts) for (const a of h.aaaa.status === 'ok' ? h.aaaa.addresses : []) if (!mxV6.has(canonical(a))) mxV6.set(canonical(a), h.exchange)
  for (const r of records) {
    if (r.target === '') continue
    if (r.port !== 25) {
      out.push({
        code: 'srv-port',
        message: `MX6 host ${r.target}: SRV port ${r.port}, not 25: outbound port-25 rules do not cover it (mx6-send connects to port 25 anyway unless allow_srv_port=true)`,
      })
    }
    const v6 = r.aaaa
    if (v6 && (v6.status === 'nxdomain' || v6.status === 'nodata' || (v6.status === 'ok' && v6.addresses.length === 0))) {
      out.push({
        code: 'srv-no-aaaa',
        message: `MX6 host ${r.target} has no AAAA record (${why(v6.status === 'ok' ? 'nodata' : v6.status)}): MX6-aware senders connect to MX6 hosts over IPv6 only, so they cannot use it`,
      })
    }
    for (const addr of v6?.status === 'ok' ? v6.addresses : []) {
      const on = mxV6.get(canonical(addr))
      if (on) {
        out.push({
          code: 'mx6-on-mx',
          message: `MX6 address ${canonical(addr)} of ${r.target} is also an IPv6 address of the regular MX host ${on}: senders that ignore MX6 reach it too and get the hard 550 fallback reply there`,
          hint: 'give the MX6 host an IPv6 address of its own, not in the MX set',
        })
      }
    }
  }

  // The regular MX: reachable over IPv4, and reached in time.
  if (f.mx.status === 'nxdomain') {
    out.push({ code: 'no-domain', message: `${d} does not exist (NXDOMAIN for MX)` })
  } else if (f.mx.nullMx) {
    out.push({
      code: 'null-mx',
      message: `${d} publishes a null MX (RFC 7505): it accepts no mail at all, and senders (mx6-send too) bounce at once whatever ${f.srv.name} says`,
    })
  } else if (f.mx.status !== 'error' && f.mx.hosts.length > 0) {
    const hosts = f.mx.hosts
    const v4 = hosts.filter(hasV4)
    const complete = hosts.every((h) => h.a.status !== 'error')
    if (v4.length === 0 && complete) {
      const what = hosts.map((h) => `${h.exchange}: ${hasV6(h) ? 'AAAA only' : 'no address'}`).join(', ')
      out.push({
        code: 'mx-no-ipv4',
        message: f.mx.implicit
          ? `${d} has no MX records and its implicit MX has no A record (${what}): senders without IPv6, and MX6 fallbacks to IPv4, cannot deliver`
          : `no regular MX host of ${d} has an A record (${what}): senders without IPv6, and MX6 fallbacks to IPv4, cannot deliver`,
        hint: 'the regular MX must stay reachable over IPv4',
      })
    } else if (v4.length > 0) {
      // Hosts at the first IPv4 host's preference may be tried before it too (random order).
      const first = v4[0]
      const ahead = hosts.filter((h) => h !== first && !hasV4(h) && hasV6(h) && h.priority <= first.priority)
      const sessions = ahead.reduce((n, h) => n + new Set(h.aaaa.addresses.map(canonical)).size, 0)
      if (sessions >= POSTFIX_SESSION_LIMIT) {
        const names = ahead.map((h) => `${h.exchange} (${h.priority})`).join(', ')
        out.push({
          code: 'v6-before-v4',
          message: `${sessions} IPv6-only MX addresses (${names}) come before the first IPv4 MX host ${first.exchange} (${first.priority}): Postfix makes at most ${POSTFIX_SESSION_LIMIT} SMTP sessions per delivery (smtp_mx_session_limit), so mail deferred over IPv6 never reaches the IPv4 MX`,
          hint: `keep at most one IPv6-only MX address ahead of ${first.exchange}, or publish MX6 instead of IPv6 MX hosts`,
        })
      }
    }
  }
  return out
}

function showAddresses(a: Addresses | undefined): string {
  if (!a) return 'not looked up'
  if (a.status === 'ok') return a.addresses.map((x) => (a.query.startsWith('AAAA') ? canonical(x) : x)).join(', ') || 'none'
  if (a.status === 'nodata') return 'none'
  if (a.status === 'nxdomain') return 'no such name'
  return 'lookup failed'
}

/** What was found, a few lines for the operator. */
export function summaryLines(f: DnsFacts): string[] {
  const out: string[] = []
  if (f.srv.status === 'ok') {
    for (const r of f.srv.records) {
      const target = r.target === '' ? '.' : r.target
      const addrs = r.target === '' ? '' : `: AAAA ${showAddresses(r.aaaa)}; A ${showAddresses(r.a)}`
      out.push(`SRV ${f.srv.name}: ${r.priority} ${r.weight} ${r.port} ${target}${addrs}`)
    }
  } else {
    out.push(`SRV ${f.srv.name}: ${f.srv.status === 'error' ? 'lookup failed' : `none (${why(f.srv.status)})`}`)
  }
  if (f.mx.status === 'error') out.push(`MX ${f.domain}: lookup failed`)
  else if (f.mx.status === 'nxdomain') out.push(`MX ${f.domain}: none (NXDOMAIN)`)
  else if (f.mx.nullMx) out.push(`MX ${f.domain}: null MX (0 .)`)
  else {
    if (f.mx.implicit) out.push(`MX ${f.domain}: none (NODATA), the domain itself is the implicit MX`)
    for (const h of f.mx.hosts) out.push(`MX ${f.domain}: ${h.priority} ${h.exchange}: A ${showAddresses(h.a)}; AAAA ${showAddresses(h.aaaa)}`)
  }
  return out
}

/** The last line when nothing is wrong. */
export function okLine(f: DnsFacts): string {
  const v6 = f.srv.records.flatMap((r) => (r.aaaa?.status === 'ok' ? r.aaaa.addresses.map((a) => `[${canonical(a)}]:${r.port}`) : []))
  const v4 = f.mx.hosts.filter(hasV4).map((h) => h.exchange)
  return `OK: ${f.domain} publishes MX6: MX6-aware senders deliver over IPv6 to ${v6.join(', ')}, the others over IPv4 to ${v4.join(', ')}`
}
