// SMTP reply text safety (RFC 5321 section 4.5.3.1.5: a reply line is at most
// 512 octets including the code and CRLF).

/** Room for "NNN-X.YYY.ZZZ " (14) and CRLF (2) in a 512-octet line, with margin. */
export const MAX_TEXT = 480

/** Printable ASCII only: anything else (CR, LF, NUL, 8-bit) becomes "?". */
export function safeText(text: unknown): string {
  // eslint-disable-next-line no-control-regex
  return String(text ?? '').replace(/[^\x20-\x7e]/g, '?')
}

/** Splits text into reply lines of at most MAX_TEXT octets, at spaces where possible. */
export function replyLines(text: unknown, max = MAX_TEXT): string[] {
  const clean = safeText(text).replace(/ {2,}/g, ' ').trim()
  if (!clean) return []
  const out: string[] = []
  let rest = clean
  while (rest.length > max) {
    let cut = rest.lastIndexOf(' ', max)
    if (cut < max / 2) cut = max
    out.push(rest.slice(0, cut).trimEnd())
    rest = rest.slice(cut).trimStart()
  }
  if (rest) out.push(rest)
  return out
}

export interface ReplyCode {
  code: number
  /** Enhanced status code "c.s.d" (RFC 3463), class equal to the code's first digit. */
  status: string
}

/** Why a configured code/status pair is unusable, or null when it is fine. */
export function checkReplyCode(code: number, status: string, wantClass: 4 | 5): string | null {
  if (!Number.isInteger(code) || Math.floor(code / 100) !== wantClass || code % 100 > 59) return `code must be ${wantClass}xx`
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})$/.exec(status)
  if (!m) return 'status must look like 4.7.26'
  if (Number(m[1]) !== wantClass) return `status class must be ${wantClass}`
  return null
}
