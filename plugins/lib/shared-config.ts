// What the three plugins and mx6ctl share: one Redis setting (config/mx6.ini [redis], which a
// plugin's own [redis] may override key by key), the check of config/plugins' order, and the
// one line a reload logs.
import type { Section } from './settings'

export const SHARED_CONFIG = 'mx6.ini'

/** Every plugin's reload for mx6.ini, shared by every copy of this module in the process. */
const RELOADS = Symbol.for('haraka-mx6: mx6.ini reloads')

/**
 * mx6.ini as a plugin reads it. haraka-config calls one callback per file (the last one
 * registered), so the callback given here reloads every plugin that reads the file.
 */
export function readSharedConfig(config: { get(file: string, cb: () => void): unknown }, plugin: string, reload: () => void): Record<string, Section> {
  const g = globalThis as unknown as Record<symbol, Map<string, () => void> | undefined>
  const reloads = (g[RELOADS] ??= new Map())
  reloads.set(plugin, reload)
  return (config.get(SHARED_CONFIG, () => {
    for (const r of [...reloads.values()]) r()
  }) ?? {}) as Record<string, Section>
}

/**
 * The plugin's ini with the [redis] section in force: mx6.ini's, each key of the plugin's own
 * [redis] overriding it; and where it comes from, for the log.
 */
export function withSharedRedis<T extends Record<string, Section>>(ini: T, shared: Record<string, Section> | undefined, file: string): { ini: T; source: string; redisFile: string } {
  const base = shared?.redis ?? {}
  const own = Object.fromEntries(Object.entries(ini.redis ?? {}).filter(([, v]) => v !== undefined && v !== ''))
  const overrides = Object.keys(own)
  const source = overrides.length ? `${SHARED_CONFIG} [redis], ${file} [redis] overriding ${overrides.join(', ')}` : Object.keys(base).length ? `${SHARED_CONFIG} [redis]` : 'the defaults (no [redis] in mx6.ini)'
  // redisFile: the file messages about [redis] values name (the plugin's own when it sets any).
  return { ini: { ...ini, redis: { ...base, ...own } }, source, redisFile: overrides.length ? file : SHARED_CONFIG }
}

/** What changed between two configurations, one "path: old -> new" each (passwords masked). */
export function configChanges(before: unknown, after: unknown, at = ''): string[] {
  if (JSON.stringify(before) === JSON.stringify(after)) return []
  const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v)
  if (!isObject(before) || !isObject(after)) {
    const show = (v: unknown) => (/password/i.test(at) ? '***' : JSON.stringify(v) ?? 'undefined')
    return [`${at}: ${show(before)} -> ${show(after)}`]
  }
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
  return keys.flatMap((k) => configChanges(before[k], after[k], at ? `${at}.${k}` : k))
}

const MALWARE_SCANNERS = ['clamd', 'avg', 'esets', 'virustotal']
const CONTENT_FILTERS = ['spamassassin', 'rspamd', 'dspam', 'bayes']

/**
 * Warnings about config/plugins for mx6-receive: where it must stand relative to spf, dkim,
 * the malware scanners and the content spam filters (README, "config/plugins order").
 */
export function orderWarnings(plugins: readonly string[], undecided: 'wait' | 'defer'): string[] {
  const names = plugins.map((p) => p.trim().replace(/^haraka-plugin-/, '')).filter((p) => p && !p.startsWith('#'))
  const at = (n: string) => names.indexOf(n)
  const self = at('mx6-receive')
  if (self < 0) return []
  const out: string[] = []
  if (at('spf') < 0) out.push('spf is not in config/plugins: no MAIL FROM is SPF-authenticated, so no SPF-based rule can accept IPv6 mail')
  else if (at('spf') > self) out.push('spf is listed after mx6-receive: its MAIL FROM result is not there when mx6-receive decides; list spf before it')
  if (undecided === 'wait') {
    if (at('dkim') < 0) out.push('dkim is not in config/plugins while undecided=wait: IPv6 mail is decided after DATA as if unsigned; add dkim before mx6-receive, or set undecided=defer')
    else if (at('dkim') > self) out.push('dkim is listed after mx6-receive: its results are not there when mx6-receive decides after DATA; list dkim before it')
  }
  for (const m of MALWARE_SCANNERS) if (at(m) > self) out.push(`${m} is listed after mx6-receive: trusted mail ends data_post before it scans; list malware scanners before mx6-receive`)
  for (const c of CONTENT_FILTERS) if (at(c) >= 0 && at(c) < self) out.push(`${c} is listed before mx6-receive: it also filters trusted mail; list content spam filters after mx6-receive`)
  return out
}
