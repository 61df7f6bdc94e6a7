// Domain names: canonical A-label form, parent candidates, DMARC-style alignment.
import { domainToASCII } from 'node:url'
import { getDomain } from 'tldts'
import { memo } from './memo'

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/

/**
 * Lower-case A-label form without a trailing dot, or null when the text is not
 * a usable host name. U-labels are converted (IDNA via WHATWG URL rules).
 */
export function canonicalDomain(text: unknown): string | null {
  if (typeof text !== 'string') return null
  // Names seen again and again (HELO, MAIL FROM, recipients) are remembered; odd long texts are not.
  return text.length <= 300 ? canonicalMemo(text) : canonicalText(text)
}

function canonicalText(text: string): string | null {
  let d = text.trim()
  if (d.endsWith('.')) d = d.slice(0, -1)
  if (d.length === 0 || d.length > 253 * 4) return null
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(d)) return null
  const ascii = /^[\x21-\x7e]*$/.test(d) ? d.toLowerCase() : domainToASCII(d)
  if (!ascii || ascii.length > 253) return null
  const labels = ascii.split('.')
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return null
  return ascii
}
const canonicalMemo = memo(4096, canonicalText)

/** The domain and each parent, most specific first: a.b.c -> [a.b.c, b.c, c]. */
export function domainCandidates(domain: string): string[] {
  // Every decision asks this for several names: suffixes of the text, not labels split and joined again.
  const out = [domain]
  for (let i = domain.indexOf('.'); i >= 0; i = domain.indexOf('.', i + 1)) out.push(domain.slice(i + 1))
  return out
}

/** The candidates of several names, each once, in order (the lookups of a decision phase). */
export function allCandidates(domains: readonly string[]): string[] {
  const out: string[] = []
  for (const d of domains) for (const c of domainCandidates(d)) if (!out.includes(c)) out.push(c)
  return out
}

/**
 * Organizational domain per DMARC (RFC 7489 section 3.2) from the Public Suffix
 * List, private section included: alice.github.io and bob.github.io are two
 * organizations, not one. A name under an unknown TLD falls back to its last
 * two labels.
 */
export function orgDomain(domain: string): string {
  return getDomain(domain, { allowPrivateDomains: true }) ?? domain
}

export type Alignment = 'relaxed' | 'strict'

/** DMARC identifier alignment (RFC 7489 section 3.1). */
export function aligned(authDomain: string, fromDomain: string, mode: Alignment): boolean {
  if (authDomain === fromDomain) return true
  if (mode === 'strict') return false
  return orgDomain(authDomain) === orgDomain(fromDomain)
}

/**
 * True for a name that is itself a public suffix (com, co.uk, github.io), per the Public
 * Suffix List: a list entry or `@domain` covers every subdomain, so such an entry would
 * cover every domain registered under it.
 */
export function isPublicSuffix(domain: string): boolean {
  // A malformed name (no registrable domain: "", "a..b", "1.2.3.4") counts as one too: callers refuse it.
  return getDomain(domain, { allowPrivateDomains: true }) === null
}
