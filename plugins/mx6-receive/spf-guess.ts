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

export async function evaluateGuess(ip: string, domain: string, mailFrom: string, helo: string, record: string, timeoutMs: number): Promise<string> {
  const spf = new SPF()
  spf.helo = helo || 'unknown'
  spf.dns_timeout_ms = timeoutMs
  spf.resolver = {
    ...dns,
    resolveTxt: (name: string) => (name.toLowerCase() === domain ? Promise.resolve([[record]]) : dns.resolveTxt(name)),
  }
  return spf.result(await spf.check_host(ip, domain, mailFrom)).toLowerCase()
}
