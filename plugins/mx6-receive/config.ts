// mx6-receive settings: typed defaults, merged with config/mx6-receive.ini.
import net from 'node:net'
import { CachingResolver, NodeDnsClient, systemServers, type CacheOptions } from '../lib/dns'
import { parseListener, type Listener } from '../lib/ip'
import { readRedisSettings, type RedisSettings } from '../lib/redis'
import { checkReplyCode, type ReplyCode } from '../lib/reply'
import { SettingsReader, unknownKeys, type Section } from '../lib/settings'
import type { PolicyConfig } from './decide'
import { AUTH_DEFAULTS, SPF_VETO_CHOICES, type AuthConfig, type SpfVeto } from './auth'
import { GREEN_DEFAULTS, type GreenConfig } from './green'
import type { HeloMatch } from './peer-signals'
import { parsePatterns, type AnswerPattern, type ZoneConfig } from './reputation'

export const CONFIG_FILE = 'mx6-receive.ini'

export interface ReceiveConfig {
  /**
   * enforce: decisions act on the mail. observe: every decision runs and is recorded (a
   * deferral as would-defer), but the mail flows as if the plugin were not there.
   * @default enforce
   */
  mode: 'enforce' | 'observe'
  policy: PolicyConfig
  /** Recipient sub-address delimiter dropped before the book lookup; empty disables. @default + */
  recipientDelimiter: string
  /** Seconds between scans for non-canonical list entries; 0 disables. @default 600 */
  lintInterval: number
  /** Days the per-day decision counters are kept. @default 30 */
  statsDays: number
  /** Trusted mail ends data_post with OK, so spam filters after mx6-receive do not run. @default true */
  trustedSkipsFilters: boolean
  /** The deferral: `text` for mail without a basis, `authFailText` for failed authentication. */
  defer: ReplyCode & { text: string; authFailText: string }
  mx6: Mx6Config
  /** How the FCrDNS name must match the HELO name; and the origin AS zone. */
  signals: { heloMatch: HeloMatch; asnZone: string; dnsServers: string[]; dnsTimeoutMs: number }
  /** Fingerprints of deferred IPv6 attempts, to see whether they come back over IPv4. */
  followup: { enabled: boolean; ttlDays: number; maxEntries: number; writeWindowMs: number }
  /** Last-resort SPF for MAIL FROM domains that publish no SPF record. */
  spfGuess: { enabled: boolean; defaultRecord: string }
  redis: RedisSettings
  /** The peer list cache (see RedisStoreOptions.peerCache): answers kept, and their longest use in seconds. */
  cache: { entries: number; maxAgeSec: number }
  /** Reputation providers' DNS allowlists, [provider:<name>] sections in file order; none by default. */
  providers: ZoneConfig[]
}

export interface Mx6Config {
  /** Local addresses (optionally with port) that are MX6 listeners. @default none */
  listeners: Listener[]
  /** The "retry over IPv4" reply. @default 550 5.5.7 */
  code: number
  status: string
  text: string
  /** authserv-id in the Authentication-Results lines; empty: Haraka's host name ("me"). */
  authservId: string
  /** Where senders can ask to be accepted over IPv6; empty: no such line. */
  registrationUrl: string
}

export const FALLBACK_DEFAULT = {
  code: 550,
  status: '5.5.7',
  text: 'MX6 fallback: not accepted over IPv6; please deliver this message over IPv4 to our regular MX',
}

export const DEFER_DEFAULT = {
  code: 451,
  status: '4.7.26',
  text: 'Not accepted over IPv6 from this host; please deliver via our IPv4 MX',
  authFailText: 'Authentication failed (SPF, DKIM or DMARC): not accepted over IPv6; please deliver via our IPv4 MX',
}

/** ini sections as haraka-config returns them. */
export type Ini = Record<string, Section>

export const BOOLEANS = [
  '+main.skip_private',
  '+main.trusted_skips_filters',
  '+green.ip_green',
  '-green.fcrdns',
  '+green.host_green',
  '-green.asn',
  '+green.domain_green',
  '+green.history',
  '+spf_guess.enabled',
  '+auth.dmarc',
  '+auth.arc',
  '+followup.enabled',
]

export function readReceiveConfig(ini: Ini, redisFile = CONFIG_FILE): { config: ReceiveConfig; errors: string[]; unknown: string[] } {
  const r = new SettingsReader(CONFIG_FILE)
  const main = ini.main
  const d = ini.defer
  let code = r.int(d, 'defer', 'code', DEFER_DEFAULT.code, 400, 499)
  let status = r.str(d, 'defer', 'status', DEFER_DEFAULT.status)
  const why = checkReplyCode(code, status, 4)
  if (why) {
    r.errors.push(`${CONFIG_FILE} [defer] code=${code} status=${status}: ${why} (a deferral must be temporary); using ${DEFER_DEFAULT.code} ${DEFER_DEFAULT.status}`)
    code = DEFER_DEFAULT.code
    status = DEFER_DEFAULT.status
  }
  const config: ReceiveConfig = {
    mode: r.oneOf(main, 'main', 'mode', 'enforce', ['enforce', 'observe'] as const),
    policy: {
      skipPrivate: r.bool(main, 'main', 'skip_private', true),
      undecided: r.oneOf(main, 'main', 'undecided', 'wait', ['wait', 'defer'] as const),
      alignment: r.oneOf(main, 'main', 'alignment', 'relaxed', ['relaxed', 'strict'] as const),
      green: readGreen(r, ini.green),
      auth: readAuth(r, ini.auth),
    },
    recipientDelimiter: (r.key('main', 'recipient_delimiter'), main?.recipient_delimiter === '') ? '' : r.str(main, 'main', 'recipient_delimiter', '+', (s) => (/^[\x21-\x3f\x5b-\x7e]$/.test(s) && s !== '@' ? null : 'a single printable character other than @')),
    lintInterval: r.int(main, 'main', 'lint_interval', 600, 0, 86400),
    statsDays: r.int(main, 'main', 'stats_days', 30, 1, 3660),
    trustedSkipsFilters: r.bool(main, 'main', 'trusted_skips_filters', true),
    defer: { code, status, text: r.str(d, 'defer', 'text', DEFER_DEFAULT.text), authFailText: r.str(d, 'defer', 'auth_fail_text', DEFER_DEFAULT.authFailText) },
    mx6: readMx6(r, ini.mx6),
    signals: {
      heloMatch: r.oneOf(ini.green, 'green', 'fcrdns_helo_match', 'exact', ['exact', 'domain'] as const),
      asnZone: r.str(ini.green, 'green', 'asn_zone', 'origin6.asn.cymru.com', (s) => (/^[a-z0-9.-]{3,200}$/i.test(s) ? null : 'expected a DNS zone name')),
      dnsServers: ipList(r, ini.green, 'dns_servers'),
      dnsTimeoutMs: r.int(ini.green, 'green', 'dns_timeout', 3000, 100, 30000),
    },
    followup: {
      enabled: r.bool(ini.followup, 'followup', 'enabled', true),
      ttlDays: r.int(ini.followup, 'followup', 'ttl_days', 4, 1, 60),
      maxEntries: r.int(ini.followup, 'followup', 'max_entries', 100000, 100, 10_000_000),
      writeWindowMs: r.int(ini.followup, 'followup', 'write_window_ms', 50, 0, 1000),
    },
    spfGuess: {
      enabled: r.bool(ini.spf_guess, 'spf_guess', 'enabled', true),
      defaultRecord: r.str(ini.spf_guess, 'spf_guess', 'default', '', (s) => (/^v=spf1( [\x21-\x7e]+)*$/i.test(s) ? null : 'expected an SPF record starting with v=spf1')),
    },
    redis: readRedisSettings(r.as(redisFile), ini.redis),
    cache: {
      entries: r.int(ini.cache, 'cache', 'entries', 10000, 0, 1_000_000),
      maxAgeSec: r.int(ini.cache, 'cache', 'max_age', 60, 1, 86400),
    },
    providers: readProviders(r, ini),
  }
  return { config, errors: r.errors, unknown: unknownKeys(ini, r) }
}

function readMx6(r: SettingsReader, sec: Section): Mx6Config {
  const listeners: Listener[] = []
  r.key('mx6', 'listeners')
  const raw = sec?.listeners
  for (const item of typeof raw === 'string' ? raw.split(/[\s,]+/).filter(Boolean) : []) {
    const l = parseListener(item)
    if ('error' in l) r.errors.push(`${CONFIG_FILE} [mx6] listeners: ${l.error}; entry ignored`)
    else listeners.push(l)
  }
  let code = r.int(sec, 'mx6', 'code', FALLBACK_DEFAULT.code, 400, 599)
  let status = r.str(sec, 'mx6', 'status', FALLBACK_DEFAULT.status)
  const why = checkReplyCode(code, status, Math.floor(code / 100) === 4 ? 4 : 5)
  if (why) {
    r.errors.push(`${CONFIG_FILE} [mx6] code=${code} status=${status}: ${why}; using ${FALLBACK_DEFAULT.code} ${FALLBACK_DEFAULT.status}`)
    code = FALLBACK_DEFAULT.code
    status = FALLBACK_DEFAULT.status
  }
  return {
    listeners,
    code,
    status,
    text: r.str(sec, 'mx6', 'text', FALLBACK_DEFAULT.text),
    authservId: r.str(sec, 'mx6', 'authserv_id', '', (s) => (/^[\x21-\x7e]{1,200}$/.test(s) && !/[()<>@,;:\\"/[\]?=]/.test(s) ? null : 'expected a host name')),
    registrationUrl: r.str(sec, 'mx6', 'registration_url', '', (s) => (/^https?:\/\/[\x21-\x7e]{1,400}$/.test(s) ? null : 'expected an http:// or https:// URL of printable ASCII')),
  }
}

function readGreen(r: SettingsReader, sec: Section): GreenConfig {
  const d = GREEN_DEFAULTS
  return {
    ipGreen: r.bool(sec, 'green', 'ip_green', d.ipGreen),
    fcrdns: r.bool(sec, 'green', 'fcrdns', d.fcrdns),
    hostGreen: r.bool(sec, 'green', 'host_green', d.hostGreen),
    asn: r.bool(sec, 'green', 'asn', d.asn),
    domainGreen: r.bool(sec, 'green', 'domain_green', d.domainGreen),
    history: {
      enabled: r.bool(sec, 'green', 'history', d.history.enabled),
      minCount: r.int(sec, 'green', 'history_min_count', d.history.minCount, 1, 10_000_000),
      minDays: r.int(sec, 'green', 'history_min_days', d.history.minDays, 0, 3650),
      maxIdleDays: r.int(sec, 'green', 'history_max_idle_days', d.history.maxIdleDays, 1, 3650),
    },
  }
}

function readAuth(r: SettingsReader, sec: Section): AuthConfig {
  const dmarc = r.bool(sec, 'auth', 'dmarc', AUTH_DEFAULTS.dmarc)
  const arc = r.bool(sec, 'auth', 'arc', AUTH_DEFAULTS.arc)
  return { spfVeto: readSpfVeto(r, sec), dmarc, arc }
}

function readSpfVeto(r: SettingsReader, sec: Section): AuthConfig['spfVeto'] {
  r.key('auth', 'spf_veto')
  const raw = sec?.spf_veto
  if (raw === undefined || raw === null) return AUTH_DEFAULTS.spfVeto
  const items = String(raw).split(/[\s,]+/).filter(Boolean).map((s) => s.toLowerCase())
  const wrong = items.filter((s) => !(SPF_VETO_CHOICES as readonly string[]).includes(s))
  if (wrong.length) {
    r.errors.push(`${CONFIG_FILE} [auth] spf_veto=${String(raw)}: "${wrong.join(', ')}" not among ${SPF_VETO_CHOICES.join(', ')}; using the default ${AUTH_DEFAULTS.spfVeto.join(',')}`)
    return AUTH_DEFAULTS.spfVeto
  }
  return [...new Set(items)] as SpfVeto[]
}

/** A provider's name as its section gives it: [provider:dnswl]. */
const PROVIDER_SECTION = /^provider:([a-z0-9][a-z0-9_-]{0,31})$/

/**
 * The [provider:<name>] sections: each a zone, its kind, and which answers mean trusted,
 * green or error. A section that cannot be used is left out with an error line: a provider
 * never counts on a guess.
 */
function readProviders(r: SettingsReader, ini: Ini): ZoneConfig[] {
  const out: ZoneConfig[] = []
  for (const [section, sec] of Object.entries(ini)) {
    if (!section.startsWith('provider')) continue
    const name = PROVIDER_SECTION.exec(section)?.[1]
    if (!name) {
      r.errors.push(`${CONFIG_FILE} [${section}]: a provider section is [provider:<name>], the name lower-case letters, digits, - and _ (at most 32); section ignored`)
      continue
    }
    const skip = (why: string): void => void r.errors.push(`${CONFIG_FILE} [${section}]: ${why}; provider ${name} not queried`)
    const zone = r.str(sec, section, 'zone', '', (s) => (/^([a-z0-9_-]{1,63}\.)+[a-z0-9-]{1,63}$/i.test(s) && s.length <= 200 ? null : 'expected a DNS zone name'))
    const kind = r.oneOf(sec, section, 'kind', 'ip', ['ip', 'domain'] as const)
    const patterns = (key: 'trusted' | 'green' | 'error'): AnswerPattern[] | null => {
      r.key(section, key)
      const raw = sec?.[key]
      if (raw === undefined || raw === null || raw === '') return []
      const p = parsePatterns(String(raw))
      if (typeof p === 'string') {
        skip(`${key}=${String(raw)}: ${p}`)
        return null
      }
      return p
    }
    const trusted = patterns('trusted')
    const green = patterns('green')
    const error = patterns('error')
    const timeoutMs = r.int(sec, section, 'timeout', 1000, 50, 30000)
    if (!zone) skip('no zone=')
    else if (trusted && green && error && trusted.length + green.length === 0) skip('neither trusted= nor green= maps an answer, so no answer could count')
    else if (out.some((z) => z.name === name)) skip('a second section of the same name')
    else if (trusted && green && error) out.push({ name, zone: zone.toLowerCase(), kind, trusted, green, error, timeoutMs })
  }
  return out
}

function ipList(r: SettingsReader, sec: Section, key: string): string[] {
  r.key('green', key)
  const raw = sec?.[key]
  const out: string[] = []
  for (const s of typeof raw === 'string' ? raw.split(/[\s,]+/).filter(Boolean) : []) {
    if (net.isIP(s)) out.push(s)
    else r.errors.push(`${CONFIG_FILE} [green] ${key}: "${s}" is not an IP address; ignored`)
  }
  return out
}

/**
 * The resolver for the peer's PTR/AAAA/TXT lookups, as the plugin builds it (also
 * used by mx6ctl explain, so both see DNS the same way). Node's resolver gives no
 * TTL for PTR and TXT answers: they are cached for five minutes.
 */
export function peerResolver(config: ReceiveConfig, health?: CacheOptions['health']): CachingResolver {
  return new CachingResolver(new NodeDnsClient(resolverServers(config), config.signals.dnsTimeoutMs, 300), { negativeTtl: 300, maxTtl: 3600, health })
}

/** The name servers mx6-receive asks: [green] dns_servers, else the system's. */
export function resolverServers(config: ReceiveConfig): string[] {
  return config.signals.dnsServers.length ? config.signals.dnsServers : systemServers()
}
