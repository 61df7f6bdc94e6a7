// mx6ctl dns records | check: the DNS side of MX6.
import net from 'node:net'
import ipaddr from 'ipaddr.js'
import { CachingResolver, Dns2Client, systemServers } from '../../plugins/lib/dns'
import { canonicalDomain } from '../../plugins/lib/domain'
import { checkV6Entry, classifyPeer } from '../../plugins/lib/ip'
import { parse, UsageError, type Command, type Io } from './command'
import { findProblems, gatherDnsFacts, okLine, summaryLines } from './dns-check'

const HELP = `Usage: mx6ctl dns records --domain <domain> --mx6-host <host> --ipv6 <addr>
                         [--ipv4 <addr>] [--mx-host <host>] [--ttl <seconds>]
       mx6ctl dns check <domain> [--server <ip>[,<ip>...]] [--timeout <ms>] [--json]

records  Prints the zone lines to publish for MX6: the regular MX (reachable
         over IPv4; --mx-host, default mx.<domain>, with an A record when
         --ipv4 is given), the SRV record _mx6._tcp.<domain> pointing at
         --mx6-host on port 25, and that host's AAAA (--ipv6, an extra IPv6
         address of your Haraka that is in no MX record) and A (--ipv4).

check    Looks up _mx6._tcp.<domain> SRV, the MX hosts and their addresses
         (with the DNS code mx6-send uses; the host's name servers unless
         --server is given) and reports, one line each: MX6 not published,
         SRV target ".", SRV port not 25, MX6 host without AAAA, MX6 address
         that is also a regular MX address, null MX, no IPv4-reachable MX,
         two or more IPv6-only MX addresses before the first IPv4 MX (Postfix
         tries two per delivery), and DNS errors.
         --json prints {"domain", "servers": [...], "ok": bool,
         "problems": [{"code", "message", "hint"?}], "srv": {"name",
         "status", "records": [{"priority", "weight", "port", "target",
         "aaaa", "a"}]}, "mx": {"status", "nullMx", "implicit", "hosts":
         [{"priority", "exchange", "a", "aaaa"}]}}, addresses as {"status",
         "addresses": [...], "query", "error"?}; status is ok, nxdomain,
         nodata or error.

Exit status: 0 clean (records: printed), 1 problems or DNS errors, 2 invalid
input or usage (one line on stderr).
`

export const dnsCommand: Command = {
  summary: 'print the DNS records to publish for MX6 (records), or check a domain (check)',
  help: HELP,
  async run(argv, io) {
    const [sub, ...rest] = argv
    if (sub === 'records') return records(rest, io)
    if (sub === 'check') return check(rest, io)
    throw new UsageError(sub ? `unknown subcommand "${sub}" (records or check)` : 'expected a subcommand: records or check')
  },
}

function domainArg(opt: string, value: string | undefined): string {
  if (value === undefined) throw new UsageError(`${opt} is required`)
  const d = canonicalDomain(value)
  if (!d) throw new UsageError(`${opt} "${printableArg(value)}": not a domain name`)
  return d
}

function printableArg(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > 80 ? `${clean.slice(0, 80)}...` : clean
}

/** A single global IPv6 unicast address, canonical (RFC 5952). */
export function mx6Address(value: string): string {
  const bad = (why: string): UsageError => new UsageError(`--ipv6 "${printableArg(value)}": ${why}`)
  if (value.includes('/')) throw bad('a single address, not a prefix')
  if (value.includes('%')) throw bad('no zone id in a published address')
  const peer = classifyPeer(value)
  if (!peer) throw bad('not an IPv6 address')
  if (peer.family === 'ipv4') throw bad(value.includes(':') ? 'an IPv4-mapped address is IPv4, not IPv6' : 'an IPv4 address (that goes in --ipv4)')
  // Non-canonical text is fine (it is printed canonical); anything else is not a single address.
  const check = checkV6Entry(value)
  if (!check.ok && !check.fix) throw bad(check.error)
  const range = ipaddr.IPv6.parse(peer.canonical).range()
  if (['unspecified', 'loopback', 'linkLocal', 'multicast'].includes(range)) {
    throw new UsageError(`--ipv6 ${peer.canonical}: a ${range} address cannot be reached by other mail servers`)
  }
  return peer.canonical
}

export function mx4Address(value: string): string {
  if (!net.isIPv4(value)) throw new UsageError(`--ipv4 "${printableArg(value)}": not an IPv4 address`)
  const range = ipaddr.IPv4.parse(value).range()
  if (['unspecified', 'loopback', 'linkLocal', 'multicast', 'broadcast'].includes(range)) {
    throw new UsageError(`--ipv4 ${value}: a ${range} address cannot be reached by other mail servers`)
  }
  return value
}

export interface RecordsInput {
  domain: string
  mx6Host: string
  ipv6: string
  ipv4?: string
  mxHost: string
  ttl?: number
}

/** The zone file lines (absolute names), with comments; pure. */
export function zoneLines(r: RecordsInput): string[] {
  const rows: Array<[string, string, string] | string> = []
  rows.push(`; MX6 for ${r.domain} (mx6ctl dns records)`)
  rows.push('; The regular MX, reachable over IPv4: senders that ignore MX6 use only this.')
  rows.push([`${r.domain}.`, 'MX', `10 ${r.mxHost}.`])
  if (r.ipv4) rows.push([`${r.mxHost}.`, 'A', r.ipv4])
  else rows.push(`; ${r.mxHost}. needs an A record (give --ipv4 to print it), and not ${r.ipv6} as AAAA.`)
  rows.push('; MX6: senders that look up _mx6._tcp first deliver over IPv6 to this host, port 25.')
  rows.push([`_mx6._tcp.${r.domain}.`, 'SRV', `0 0 25 ${r.mx6Host}.`])
  rows.push([`${r.mx6Host}.`, 'AAAA', r.ipv6])
  if (r.ipv4) rows.push([`${r.mx6Host}.`, 'A', r.ipv4])
  const width = Math.max(...rows.filter((x): x is [string, string, string] => Array.isArray(x)).map((x) => x[0].length))
  const ttl = r.ttl === undefined ? '' : `${String(r.ttl).padEnd(7)} `
  const lines = rows.map((x) => (typeof x === 'string' ? x : `${x[0].padEnd(width)}  ${ttl}${x[1].padEnd(5)} ${x[2]}`))
  lines.push(`; Haraka: listen on [${r.ipv6}]:25 (config/smtp.ini) and list it in config/mx6-receive.ini:`)
  lines.push(`;   [mx6]`)
  lines.push(`;   listeners=${r.ipv6}`)
  lines.push(`; Then: mx6ctl dns check ${r.domain}`)
  return lines
}

async function records(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    domain: { type: 'string' },
    'mx6-host': { type: 'string' },
    ipv6: { type: 'string' },
    ipv4: { type: 'string' },
    'mx-host': { type: 'string' },
    ttl: { type: 'string' },
  })
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${printableArg(positionals[0])}"`)
  const domain = domainArg('--domain', values.domain)
  const mx6Host = domainArg('--mx6-host', values['mx6-host'])
  const mxHost = values['mx-host'] === undefined ? `mx.${domain}` : domainArg('--mx-host', values['mx-host'])
  if (mxHost === mx6Host) throw new UsageError(`--mx6-host and --mx-host must differ: the MX6 address must not be a regular MX address`)
  if (values.ipv6 === undefined) throw new UsageError('--ipv6 is required')
  const ipv6 = mx6Address(values.ipv6)
  const ipv4 = values.ipv4 === undefined ? undefined : mx4Address(values.ipv4)
  let ttl: number | undefined
  if (values.ttl !== undefined) {
    if (!/^\d{1,10}$/.test(values.ttl) || Number(values.ttl) > 2147483647) throw new UsageError(`--ttl "${printableArg(values.ttl)}": seconds, 0 to 2147483647`)
    ttl = Number(values.ttl)
  }
  for (const l of zoneLines({ domain, mx6Host, ipv6, ipv4, mxHost, ttl })) io.out(l)
  return 0
}

function serversArg(value: string | undefined): string[] {
  if (value === undefined) return []
  const list = value.split(',').map((s) => s.trim()).filter(Boolean)
  if (list.length === 0) throw new UsageError('--server needs an IP address')
  for (const s of list) if (!net.isIP(s)) throw new UsageError(`--server "${printableArg(s)}": not an IP address (name servers are given by address, port 53)`)
  return list
}

async function check(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    server: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  })
  if (positionals.length !== 1) throw new UsageError('expected exactly one <domain>')
  const domain = domainArg('<domain>', positionals[0])
  let timeoutMs = 5000
  if (values.timeout !== undefined) {
    if (!/^\d{1,6}$/.test(values.timeout) || Number(values.timeout) < 100 || Number(values.timeout) > 60000) throw new UsageError('--timeout: milliseconds, 100 to 60000')
    timeoutMs = Number(values.timeout)
  }
  const given = serversArg(values.server)
  const servers = given.length ? given : systemServers()
  if (servers.length === 0) throw new UsageError('no name servers: this host has none configured, give --server')
  // Like mx6-send: dns2's client, answers classified as NOERROR/NXDOMAIN/NODATA/error.
  const dns = new CachingResolver(new Dns2Client(servers, timeoutMs), { negativeTtl: 60, maxTtl: 3600 })
  const facts = await gatherDnsFacts(domain, dns)
  const problems = findProblems(facts)
  if (values.json) {
    io.out(JSON.stringify({ domain, servers, ok: problems.length === 0, problems, srv: facts.srv, mx: facts.mx }, null, 2))
    return problems.length ? 1 : 0
  }
  io.out(`MX6 check of ${domain} (name servers ${servers.join(', ')})`)
  for (const l of summaryLines(facts)) io.out(`  ${l}`)
  for (const p of problems) {
    io.out(`${p.code === 'dns-error' ? 'error' : 'problem'}: ${p.message}`)
    if (p.hint) io.out(`  hint: ${p.hint}`)
  }
  io.out(problems.length ? `${problems.length} problem${problems.length > 1 ? 's' : ''} found for ${domain}` : okLine(facts))
  return problems.length ? 1 : 0
}
