// Typed settings from Haraka ini sections: one defaults object, values merged
// over it, and every bad value reported (the default is then used) instead of thrown.

export type Section = Record<string, unknown> | undefined

export class SettingsReader {
  readonly errors: string[] = []
  /** Every section.key asked for: what a file holds beyond them is unknown (see unknownKeys). */
  readonly known = new Set<string>()
  constructor(readonly file: string) {}

  private raw(sec: Section, key: string): unknown {
    return sec ? sec[key] : undefined
  }

  private bad(section: string, key: string, value: unknown, why: string, def: unknown): void {
    this.errors.push(`${this.file} [${section}] ${key}=${String(value)}: ${why}; using the default ${def === '' ? '(empty)' : String(def)}`)
  }

  /** A reader for values that come from another file, reporting into the same lists. */
  as(file: string): SettingsReader {
    const r = new SettingsReader(file)
    ;(r as { errors: string[] }).errors = this.errors
    ;(r as { known: Set<string> }).known = this.known
    return r
  }

  /** Marks a key as known when it is read without one of the typed readers below. */
  key(section: string, key: string): void {
    this.known.add(`${section}.${key}`)
  }

  str(sec: Section, section: string, key: string, def: string, valid?: (v: string) => string | null): string {
    this.key(section, key)
    const v = this.raw(sec, key)
    if (v === undefined || v === null || v === '') return def
    const s = String(v).trim()
    const why = valid?.(s)
    if (why) {
      this.bad(section, key, v, why, def)
      return def
    }
    return s
  }

  int(sec: Section, section: string, key: string, def: number, min: number, max: number): number {
    this.key(section, key)
    const v = this.raw(sec, key)
    if (v === undefined || v === null || v === '') return def
    const n = typeof v === 'number' ? v : Number(String(v).trim())
    if (!Number.isInteger(n) || n < min || n > max) {
      this.bad(section, key, v, `expected a whole number from ${min} to ${max}`, def)
      return def
    }
    return n
  }

  bool(sec: Section, section: string, key: string, def: boolean): boolean {
    this.key(section, key)
    const v = this.raw(sec, key)
    if (v === undefined || v === null || v === '') return def
    if (typeof v === 'boolean') return v
    const s = String(v).trim().toLowerCase()
    if (['true', 'yes', 'on', '1'].includes(s)) return true
    if (['false', 'no', 'off', '0'].includes(s)) return false
    this.bad(section, key, v, 'expected true or false', def)
    return def
  }

  oneOf<T extends string>(sec: Section, section: string, key: string, def: T, allowed: readonly T[]): T {
    return this.str(sec, section, key, def, (s) => (allowed.includes(s as T) ? null : `expected one of ${allowed.join(', ')}`)) as T
  }
}

/**
 * The sections and keys of an ini file that `r` never read: typos and leftovers, each with
 * the nearest known key when one is close ("did you mean skip_private?").
 */
export function unknownKeys(ini: Record<string, Section>, r: SettingsReader): string[] {
  const sections = new Set([...r.known].map((k) => k.split('.')[0]))
  const out: string[] = []
  for (const [section, keys] of Object.entries(ini)) {
    // haraka-config gives every ini file a [main], empty when the file has none.
    if (!keys || typeof keys !== 'object' || Object.keys(keys).length === 0) continue
    if (!sections.has(section)) {
      out.push(`${r.file}: unknown section [${section}]${hint(section, [...sections])}; ignored`)
      continue
    }
    const known = [...r.known].filter((k) => k.startsWith(`${section}.`)).map((k) => k.slice(section.length + 1))
    for (const key of Object.keys(keys)) if (!known.includes(key)) out.push(`${r.file} [${section}] ${key}: unknown key${hint(key, known)}; ignored`)
  }
  return out
}

/** The known key closest to a typo: a few letters off, or the start of a longer key. */
function hint(word: string, candidates: string[]): string {
  const w = word.toLowerCase().replace(/-/g, '_')
  let best = ''
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = w.length >= 3 && c.startsWith(w) ? 1 : distance(w, c)
    if (d < bestDistance) [best, bestDistance] = [c, d]
  }
  return best && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? ` (did you mean ${best}?)` : ''
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    prev = row
  }
  return prev[b.length]
}
