// Recognising the receiver's "retry over IPv4" reply.

export interface FallbackCodes {
  /** The MX6 fallback reply, default 550 with 5.5.7. */
  code: number
  status: string
  /** Also accept the basic code 456 of the expired draft-martin-smtp-ipv6-to-ipv4-fallback. */
  draft456: boolean
}

/**
 * True when an SMTP reply (basic code and enhanced status as Haraka parsed them)
 * is the fallback reply. The enhanced status must match for the MX6 code, since
 * a bare 550 means a real rejection; 456 is unassigned in RFC 5321, so the
 * basic code alone identifies the draft's reply.
 */
export function isFallbackReply(code: string | number | undefined, status: string | undefined, c: FallbackCodes): boolean {
  const n = Number(code)
  if (c.draft456 && n === 456) return true
  return n === c.code && (status ?? '').trim() === c.status
}
