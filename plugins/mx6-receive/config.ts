// mx6-receive settings: typed defaults, merged with config/mx6-receive.ini.
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
  redis: RedisSettings
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
    redis: readRedisSettings(r, ini.redis),
  }
  return { config, errors: r.errors }
}
