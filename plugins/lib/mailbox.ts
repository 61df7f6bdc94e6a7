// Mailbox normalisation for address-book keys and members.
import { canonicalDomain } from './domain'

export interface Mailbox {
  /** `local@domain`, local part lower-cased, domain as lower-case A-label. */
  address: string
  domain: string
}

/** RFC 5321 limits (64 + 1 + 255); anything longer cannot be a real mailbox. */
const MAX_ADDRESS = 320

/**
 * Normalises an envelope or header mailbox. Local parts are compared
 * case-insensitively (what every mainstream MTA does in practice), and for
 * recipients a `+tag` (the configured delimiter) is dropped so that
 * `bob+lists@x` shares bob@x's address book. Returns null for the null sender,
 * for addresses with control characters, and for overlong ones: no key is
 * built from them and they match nothing.
 */
export function normaliseMailbox(user: unknown, host: unknown, delimiter = ''): Mailbox | null {
  if (typeof user !== 'string' || typeof host !== 'string' || user === '' || host === '') return null
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user)) return null
  const domain = canonicalDomain(host)
  if (!domain) return null
  let local = user.toLowerCase()
  if (delimiter) {
    const cut = local.indexOf(delimiter)
    if (cut > 0) local = local.slice(0, cut)
  }
  const address = `${local}@${domain}`
  if (Buffer.byteLength(address, 'utf8') > MAX_ADDRESS) return null
  return { address, domain }
}
