// Redis key names. Every key the suite touches is built here, under one prefix.

export const DEFAULT_PREFIX = 'mx6:'

/** A prefix is printable ASCII without spaces or braces (braces would change Cluster hash slots). */
export function validPrefix(prefix: string): boolean {
  return /^[\x21-\x7a\x7c\x7e]{1,64}$/.test(prefix)
}

export class Keys {
  readonly prefix: string
  constructor(prefix = DEFAULT_PREFIX) {
    if (!validPrefix(prefix)) throw new Error(`invalid key prefix "${prefix}"`)
    this.prefix = prefix
  }
  get ipAllow(): string {
    return `${this.prefix}ip:allow`
  }
  get ipGreen(): string {
    return `${this.prefix}ip:green`
  }
  get domainAllow(): string {
    return `${this.prefix}domain:allow`
  }
  get domainGreen(): string {
    return `${this.prefix}domain:green`
  }
  get hostGreen(): string {
    return `${this.prefix}host:green`
  }
  get asnGreen(): string {
    return `${this.prefix}asn:green`
  }
  /** ARC sealers (d= of ARC-Seal) whose word counts for forwarded mail. */
  get arcTrusted(): string {
    return `${this.prefix}arc:trusted`
  }
  /** Last-resort SPF records per domain (hash: field = domain, value = SPF record). */
  get spfGuess(): string {
    return `${this.prefix}spf:guess`
  }
  /**
   * Authenticated history of a From domain on the IPv4 service (hash: count,
   * first, last; times in Unix seconds). Written by mx6-learn, read by mx6-receive.
   */
  history(domain: string): string {
    return `${this.prefix}hist:${domain}`
  }
  /**
   * When mx6-learn last saw the owner write to each learned book member (sorted
   * set: member -> Unix seconds), so learned entries can age out. Entries added
   * by hand have no score here and never age out.
   */
  bookSeen(address: string): string {
    return `${this.prefix}bookseen:${address}`
  }
  /** A deferred IPv6 attempt, by envelope fingerprint (hash; see lib/followup.ts). */
  attempt(envelopeHash: string): string {
    return `${this.prefix}fp:env:${envelopeHash}`
  }
  /** Message-ID fingerprint -> envelope fingerprint of the same attempt (string). */
  attemptByMessageId(midHash: string): string {
    return `${this.prefix}fp:mid:${midHash}`
  }
  /**
   * Every recorded attempt (sorted set: envelope fingerprint -> time of its first
   * deferral), bounded: an envelope trimmed from it loses its attempt hash too.
   */
  get attempts(): string {
    return `${this.prefix}fp:index`
  }
  /**
   * Every recorded Message-ID fingerprint (sorted set: -> time of its latest deferral),
   * bounded like attempts: one trimmed from it loses its attemptByMessageId key too.
   */
  get attemptMessageIds(): string {
    return `${this.prefix}fp:midindex`
  }
  /** `address` must come from normaliseMailbox (no control characters, bounded length). */
  book(address: string): string {
    return `${this.prefix}book:${address}`
  }
  /** The sender's log of MX6 fallbacks (list of JSON entries, newest first, bounded). */
  get fallbackLog(): string {
    return `${this.prefix}send:fallbacks`
  }
  /**
   * The entries a named provider source owns in list hash `listKey` (set, written by
   * mx6ctl sync). `listKey` in braces is the Cluster hash tag: the set lives in the list
   * hash's slot, so one script can update both (a prefix never holds braces, and a
   * source name is [a-z0-9._-]).
   */
  source(listKey: string, name: string): string {
    return `${this.prefix}src:{${listKey}}:${name}`
  }
  /** A sync run's staging set for `source(listKey, name)`: same slot, random suffix, an expiry. */
  sourceStage(listKey: string, name: string, run: string): string {
    return `${this.prefix}stage:{${listKey}}:${name}:${run}`
  }
  /** The synced sources (hash: field = "<list>:<kind>:<name>", value = JSON of the last run). */
  get sources(): string {
    return `${this.prefix}sources`
  }
  /** Per-day decision counters (hash: field = "<phase>.<verdict>.<rule>"). */
  stats(day: string): string {
    return `${this.prefix}stats:${day}`
  }
}
