// DNS for mailauth (DMARC and ARC): its TXT lookups go through the suite's resolver (cache,
// table in tests), shaped like dns.promises.resolve, within one deadline per evaluation.
import type { Lookup } from '../lib/dns'

/** What DMARC and ARC need from DNS; CachingResolver satisfies it. */
export interface TxtResolver {
  /** TXT records of a name, each record's strings joined. Never rejects (an error is a value). */
  txt(name: string): Promise<Lookup<string>>
}

/** The node:dns error codes mailauth tells apart: ENOTFOUND and ENODATA mean "no record". */
export type DnsCode = 'ENOTFOUND' | 'ENODATA' | 'ESERVFAIL' | 'ETIMEOUT' | 'ENOTIMP'

/**
 * The error mailauth expects for a DNS answer without records (or a failed lookup). It reports
 * an answer, not a fault of this code: made without a stack trace, whose capture was most of a
 * DMARC evaluation's cost (a cached NXDOMAIN for nearly every deferred message; docs/performance.md).
 */
export function dnsError(code: DnsCode, message: string): NodeJS.ErrnoException {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    const err: NodeJS.ErrnoException = new Error(message)
    err.code = code
    return err
  } finally {
    Error.stackTraceLimit = limit
  }
}

/** A resolver function as mailauth calls it: `resolver(name, rrtype)`, TXT answers as string[][]. */
export type MailauthResolver = (name: string, rrtype: string) => Promise<string[][]>

/**
 * One evaluation's DNS: each name asked once (mailauth asks for an ARC-Seal key twice), every
 * answer kept for inspection afterwards, and a temporary failure (an error answer, a timeout)
 * remembered, so a failed result can say it may pass later.
 */
export class MailauthDns {
  /** Answers by lower-case name, as the resolver gave them (timeouts as errors). */
  readonly answers = new Map<string, Lookup<string>>()
  /** The first temporary failure, e.g. "TXT _dmarc.example.com: timed out"; null when none. */
  failure: string | null = null
  private readonly deadline: number

  constructor(
    private readonly resolver: TxtResolver,
    timeoutMs: number,
  ) {
    this.deadline = Date.now() + Math.max(0, timeoutMs)
  }

  /** What mailauth is given as `resolver`. */
  readonly resolve: MailauthResolver = async (name, rrtype) => {
    const key = name.toLowerCase().replace(/\.$/, '')
    if (rrtype !== 'TXT') throw dnsError('ENOTIMP', `${rrtype} ${key}: only TXT is served`)
    let answer = this.answers.get(key)
    if (!answer) {
      answer = await this.lookup(key)
      this.answers.set(key, answer)
    }
    if ('ok' in answer) return answer.ok.map((text) => [text])
    if ('none' in answer) throw dnsError(answer.none === 'nxdomain' ? 'ENOTFOUND' : 'ENODATA', `TXT ${key}: ${answer.none}`)
    throw dnsError(answer.error.endsWith('timed out') ? 'ETIMEOUT' : 'ESERVFAIL', answer.error)
  }

  private async lookup(name: string): Promise<Lookup<string>> {
    const left = this.deadline - Date.now()
    if (left <= 0) return this.failed(`TXT ${name}: timed out`)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, left, 'timeout')))
    try {
      const r = await Promise.race([this.resolver.txt(name), timeout])
      if (r === 'timeout') return this.failed(`TXT ${name}: timed out`)
      if ('error' in r) return this.failed(r.error)
      return r
    } catch (err) {
      // The interface says never rejects; one that does is treated like an error answer.
      return this.failed(`TXT ${name}: ${(err as Error)?.message || 'no answer'}`)
    } finally {
      clearTimeout(timer)
    }
  }

  private failed(message: string): Lookup<string> {
    this.failure ??= message
    return { error: message }
  }
}

/** Header-safe text for a comment or log: printable ASCII, no parentheses, bounded. */
export function commentText(text: unknown, max = 160): string {
  const t = String(text ?? '')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/[()\\]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  return t.length > max ? `${t.slice(0, max)}...` : t
}
