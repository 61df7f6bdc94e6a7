// Typed settings from Haraka ini sections: one defaults object, values merged
// over it, and every bad value reported (the default is then used) instead of thrown.

export type Section = Record<string, unknown> | undefined

export class SettingsReader {
  readonly errors: string[] = []
  constructor(private readonly file: string) {}

  private raw(sec: Section, key: string): unknown {
    return sec ? sec[key] : undefined
  }

  private bad(section: string, key: string, value: unknown, why: string): void {
    this.errors.push(`${this.file} [${section}] ${key}=${String(value)}: ${why}; using the default`)
  }

  str(sec: Section, section: string, key: string, def: string, valid?: (v: string) => string | null): string {
    const v = this.raw(sec, key)
    if (v === undefined || v === null || v === '') return def
    const s = String(v).trim()
    const why = valid?.(s)
    if (why) {
      this.bad(section, key, v, why)
      return def
    }
    return s
  }

  int(sec: Section, section: string, key: string, def: number, min: number, max: number): number {
    const v = this.raw(sec, key)
    if (v === undefined || v === null || v === '') return def
    const n = typeof v === 'number' ? v : Number(String(v).trim())
    if (!Number.isInteger(n) || n < min || n > max) {
      this.bad(section, key, v, `expected a whole number from ${min} to ${max}`)
      return def
    }
    return n
  }

  bool(sec: Section, section: string, key: string, def: boolean): boolean {
    const v = this.raw(sec, key)
    if (v === undefined || v === null || v === '') return def
    if (typeof v === 'boolean') return v
    const s = String(v).trim().toLowerCase()
    if (['true', 'yes', 'on', '1'].includes(s)) return true
    if (['false', 'no', 'off', '0'].includes(s)) return false
    this.bad(section, key, v, 'expected true or false')
    return def
  }

  oneOf<T extends string>(sec: Section, section: string, key: string, def: T, allowed: readonly T[]): T {
    return this.str(sec, section, key, def, (s) => (allowed.includes(s as T) ? null : `expected one of ${allowed.join(', ')}`)) as T
  }
}
