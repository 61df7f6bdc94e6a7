// A DnsClient for unit tests that answers from a table like a real server: a listed
// answer (or thrown error, e.g. a timeout), NODATA for a name that has other records,
// NXDOMAIN for anything else. It records the queries it was asked.
import type { DnsClient, RawReply, RrType } from '../../plugins/lib/dns'

export type Zone = Record<string, RawReply | Error>

export class TableClient implements DnsClient {
  queries: string[] = []
  constructor(public zone: Zone) {}
  async query(name: string, type: RrType): Promise<RawReply> {
    this.queries.push(`${type} ${name}`)
    const r = this.zone[`${type} ${name}`]
    if (r instanceof Error) throw r
    if (r) return r
    const exists = Object.keys(this.zone).some((k) => k.endsWith(` ${name}`))
    return { rcode: exists ? 0 : 3, answers: [], authorities: [] }
  }
}
