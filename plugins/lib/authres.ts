// The Authentication-Results field (RFC 8601) as SMTP reply lines, for the MX6
// fallback reply: the sender's postmaster sees what the receiver concluded.
import { MAX_TEXT } from './reply'

/** Longest single token kept; longer values (e.g. a 2,000-octet "domain") are cut. */
export const MAX_TOKEN = 200

/** Header-safe text: drops CR, LF, other controls and non-ASCII (never passed raw). */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '')
}

function cutTokens(text: string): string {
  return text
    .split(' ')
    .filter((t) => t.length > 0)
    .map((t) => (t.length > MAX_TOKEN ? t.slice(0, MAX_TOKEN) : t))
    .join(' ')
}

/** An authserv-id is a value (RFC 8601 section 2.2): keep it a plain token. */
export function safeAuthservId(id: string): string {
  const t = clean(id).replace(/[\s()<>@,;:\\"/[\]?=]/g, '').slice(0, MAX_TOKEN)
  return t || 'localhost'
}

/**
 * Folds Haraka's assembled field (authserv-id and resinfo joined by ";\r\n\t")
 * into reply lines of at most `max` octets. Continuation lines begin with a
 * space: unfolded (lines joined by a single space) they are the field value.
 */
export function authResultsLines(field: string, authservId: string, max = MAX_TEXT): string[] {
  const parts = field ? field.split(';\r\n\t').slice(1) : []
  const resinfo = parts.map((p) => cutTokens(clean(p))).filter((p) => p.length > 0)
  const lines = [`Authentication-Results: ${safeAuthservId(authservId)};${resinfo.length ? '' : ' none'}`]
  resinfo.forEach((r, i) => {
    let rest = `${r}${i < resinfo.length - 1 ? ';' : ''}`
    // Fold at spaces between tokens (CFWS), never inside one.
    while (rest.length > max - 1) {
      const cut = rest.lastIndexOf(' ', max - 1)
      const at = cut > 0 ? cut : max - 1
      lines.push(` ${rest.slice(0, at)}`)
      rest = rest.slice(at).trimStart()
    }
    lines.push(` ${rest}`)
  })
  return lines
}
