// Type declarations for the mailauth modules used by path (the package types only its main module).
declare module 'mailauth/lib/dmarc/get-dmarc-record' {
  /** The policy record's tags (lower-case names; pct and ri as numbers), its text, and where it was found. */
  type DmarcRecord = { rr: string; isOrgRecord: boolean } & Record<string, string | number | boolean | undefined>
  /** RFC 7489 policy discovery: _dmarc.<domain>, else _dmarc.<organizational domain>; false without a record. Rejects on a DNS error. */
  function getDmarcRecord(domain: string, resolver?: (name: string, rrtype: string) => Promise<string[][]>): Promise<DmarcRecord | false>
  export = getDmarcRecord
}

declare module 'mailauth/lib/parse-dkim-headers' {
  /** Parses a DKIM-Signature, ARC-* or Authentication-Results header line into tags. */
  function parseDkimHeaders(line: string | Buffer): { parsed: Record<string, unknown>; original: string | Buffer }
  export = parseDkimHeaders
}

// mailauth's index re-exports these two; their own modules spare loading the rest (see arc.ts).
declare module 'mailauth/lib/arc' {
  export { arc } from 'mailauth'
}

declare module 'mailauth/lib/dkim/verify' {
  export { dkimVerify } from 'mailauth'
}
