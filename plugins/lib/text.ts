// Text from peers and lists made safe for a log line or an SMTP reply.
import type { Hit } from './store'

/** Printable ASCII, bounded: what a peer sent never reaches a log line or reply raw. */
export function printable(text: unknown, max = 200): string {
  const clean = String(text ?? '').replace(/[^\x20-\x7e]/g, '?')
  return clean.length > max ? `${clean.slice(0, max)}...` : clean
}

/** A list hit as a reason names it: the entry, and the operator's note when there is one. */
export function hitText(h: Hit): string {
  return h.note ? `${h.entry} ("${printable(h.note)}")` : h.entry
}
