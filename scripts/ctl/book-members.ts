// Book owners and members as mx6-receive compares them: what `mx6ctl book` writes,
// what `mx6ctl lint` checks, and what each address of an imported file becomes.
import { canonicalDomain, isPublicSuffix } from '../../plugins/lib/domain'
import { normaliseMailbox } from '../../plugins/lib/mailbox'

/** Longer input cannot be a mailbox (RFC 5321: 64 + 1 + 255), checked before any regex. */
export const MAX_INPUT = 1000

export type Normalised = { value: string; changed: boolean } | { error: string }

/**
 * A book member as mx6-receive compares it: a sender mailbox (local part
 * lower-cased, domain as A-label; no sub-address stripping) or `@domain`.
 * Accepts `Name <addr>` and `mailto:addr`.
 */
export function normaliseMember(text: string): Normalised {
  const t = unwrap(text)
  if ('error' in t) return t
  const s = t.value
  if (s.startsWith('@')) {
    const d = canonicalDomain(s.slice(1))
    if (!d || s.slice(1).trim() !== s.slice(1)) return { error: 'not a domain (write @example.org for a whole domain)' }
    if (isPublicSuffix(d)) return { error: `${d} is a public suffix: @${d} would cover every domain under it` }
    const value = `@${d}`
    return { value, changed: value !== text }
  }
  const mb = mailbox(s, '')
  if ('error' in mb) return /no @/.test(mb.error) ? { error: 'not an email address (no @; write @example.org for a whole domain)' } : mb
  return { value: mb.value, changed: mb.value !== text }
}

/** A book owner exactly as mx6-receive looks it up: normaliseMailbox with the recipient delimiter. */
export function normaliseRecipient(text: string, delimiter: string): Normalised {
  const t = unwrap(text)
  if ('error' in t) return t
  if (t.value.startsWith('@')) return { error: 'a book belongs to one recipient address, not a domain' }
  const mb = mailbox(t.value, delimiter)
  if ('error' in mb) return mb
  return { value: mb.value, changed: mb.value !== text }
}

function unwrap(text: string): { value: string } | { error: string } {
  if (typeof text !== 'string') return { error: 'not text' }
  if (text.length > MAX_INPUT) return { error: 'too long for an email address' }
  let s = text.trim()
  const angle = /<([^<>]*)>/.exec(s)
  if (angle) s = angle[1].trim()
  s = s.replace(/^mailto:/i, '')
  if (s === '') return { error: 'empty' }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(s)) return { error: 'control characters' }
  if (s.includes('\ufffd')) return { error: 'undecodable characters' }
  return { value: s }
}

function mailbox(s: string, delimiter: string): { value: string } | { error: string } {
  const at = s.lastIndexOf('@')
  if (at < 0) return { error: 'not an email address (no @)' }
  const local = s.slice(0, at)
  const host = s.slice(at + 1)
  if (local === '' || /[\s<>()[\]\\,;:@"]/.test(local)) return { error: 'not an email address' }
  const mb = host.trim() === host ? normaliseMailbox(local, host, delimiter) : null
  if (!mb) return { error: canonicalDomain(host) && host.trim() === host ? 'too long for an email address' : 'not an email address (bad domain)' }
  return { value: mb.address }
}
