// mx6-receive settings: typed defaults, merged with config/mx6-receive.ini.
import { parseListener, type Listener } from '../lib/ip'
import { readRedisSettings, type RedisSettings } from '../lib/redis'
import { checkReplyCode, type ReplyCode } from '../lib/reply'
import { SettingsReader, type Section } from '../lib/settings'
import type { PolicyConfig } from './decide'

export const CONFIG_FILE = 'mx6-receive.ini'

export interface ReceiveConfig {
  policy: PolicyConfig
  /** Recipient sub-address delimiter dropped before the book lookup; empty disables. @default + */
  recipientDelimiter: string
  /** Seconds between scans for non-canonical list entries; 0 disables. @default 600 */
  lintInterval: number
  /** Days the per-day decision counters are kept. @default 30 */
  statsDays: number
  defer: ReplyCode & { text: string }
  mx6: Mx6Config
  redis: RedisSettings
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
}

/** ini sections as haraka-config returns them. */
export type Ini = Record<string, Section>

export const BOOLEANS = ['+main.skip_private']

export function readReceiveConfig(ini: Ini): { config: ReceiveConfig; errors: string[] } {
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
    policy: {
      skipPrivate: r.bool(main, 'main', 'skip_private', true),
      undecided: r.oneOf(main, 'main', 'undecided', 'wait', ['wait', 'defer'] as const),
      alignment: r.oneOf(main, 'main', 'alignment', 'relaxed', ['relaxed', 'strict'] as const),
    },
    recipientDelimiter: main?.recipient_delimiter === '' ? '' : r.str(main, 'main', 'recipient_delimiter', '+', (s) => (/^[\x21-\x3f\x5b-\x7e]$/.test(s) && s !== '@' ? null : 'a single printable character other than @')),
    lintInterval: r.int(main, 'main', 'lint_interval', 600, 0, 86400),
    statsDays: r.int(main, 'main', 'stats_days', 30, 1, 3660),
    defer: { code, status, text: r.str(d, 'defer', 'text', DEFER_DEFAULT.text) },
    mx6: readMx6(r, ini.mx6),
    redis: readRedisSettings(r, ini.redis),
  }
  return { config, errors: r.errors }
}

function readMx6(r: SettingsReader, sec: Section): Mx6Config {
  const listeners: Listener[] = []
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
