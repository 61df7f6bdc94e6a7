// mx6-learn settings: typed defaults, merged with config/mx6-learn.ini.
import { readRedisSettings, type RedisSettings } from '../lib/redis'
import { SettingsReader, unknownKeys, type Section } from '../lib/settings'
import type { LearnConfig } from './learn'

export const CONFIG_FILE = 'mx6-learn.ini'
export const BOOLEANS = ['+books.enabled', '+history.enabled', '+history.dmarc', '+followup.enabled']

export interface LearnSettings extends LearnConfig {
  /** Match IPv4 arrivals against deferred IPv6 attempts (mx6ctl followup). */
  followup: boolean
  /** Our own domains; empty: Haraka's config/host_list. */
  localDomains: string[]
  recipientDelimiter: string
  redis: RedisSettings
}

export function readLearnConfig(ini: Record<string, Section>, redisFile = CONFIG_FILE): { config: LearnSettings; errors: string[]; unknown: string[] } {
  const r = new SettingsReader(CONFIG_FILE)
  const b = ini.books
  const h = ini.history
  r.key('books', 'local_domains')
  r.key('books', 'recipient_delimiter')
  const raw = b?.local_domains
  const config: LearnSettings = {
    books: {
      enabled: r.bool(b, 'books', 'enabled', true),
      maxAgeDays: r.int(b, 'books', 'max_age_days', 365, 1, 36500),
      maxEntries: r.int(b, 'books', 'max_entries', 5000, 1, 10_000_000),
    },
    history: {
      enabled: r.bool(h, 'history', 'enabled', true),
      alignment: r.oneOf(h, 'history', 'alignment', 'relaxed', ['relaxed', 'strict'] as const),
      ttlDays: r.int(h, 'history', 'ttl_days', 400, 1, 36500),
      dmarc: r.bool(h, 'history', 'dmarc', true),
    },
    followup: r.bool(ini.followup, 'followup', 'enabled', true),
    localDomains: typeof raw === 'string' ? raw.split(/[\s,]+/).filter(Boolean).map((d) => d.toLowerCase()) : [],
    recipientDelimiter: b?.recipient_delimiter === '' ? '' : r.str(b, 'books', 'recipient_delimiter', '+', (s) => (/^[\x21-\x3f\x5b-\x7e]$/.test(s) && s !== '@' ? null : 'a single printable character other than @')),
    redis: readRedisSettings(r.as(redisFile), ini.redis),
  }
  return { config, errors: r.errors, unknown: unknownKeys(ini, r) }
}
