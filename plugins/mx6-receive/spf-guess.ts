// Last-resort SPF: for a MAIL FROM domain that publishes no SPF record, a
// reputation provider (or the operator) may supply a record to evaluate instead.
// Evaluated with haraka-plugin-spf's own RFC 7208 engine, with the guessed
// record standing in for the domain's missing TXT record; every other lookup
// (include:, a, mx, ...) goes to DNS as usual.
import dns from 'node:dns/promises'
import { SPF } from 'haraka-plugin-spf/lib/spf'

export interface GuessResult {
  /** RFC 7208 result, lower case. */
  result: string
  domain: string
  record: string
  source: 'redis' | 'default'
}

/** The DNS calls haraka-plugin-spf's engine makes (node:dns/promises has them all). */
export type SpfResolver = Pick<typeof dns, 'resolveTxt' | 'resolve' | 'resolve4' | 'resolve6' | 'resolveMx' | 'reverse'>

/**
 * The guessed record evaluated for `domain`: its TXT answer is the record, every other
 * lookup (include:, a, mx, ...) goes to `resolver` (the system's unless one is given).
 */
export async function evaluateGuess(ip: string, domain: string, mailFrom: string, helo: string, record: string, timeoutMs: number, resolver: SpfResolver = dns): Promise<string> {
  const spf = new SPF()
  spf.helo = helo || 'unknown'
  spf.dns_timeout_ms = timeoutMs
  spf.resolver = {
    ...resolver,
    resolveTxt: (name: string) => (name.toLowerCase() === domain ? Promise.resolve([[record]]) : resolver.resolveTxt(name)),
  }
  return spf.result(await spf.check_host(ip, domain, mailFrom)).toLowerCase()
}
