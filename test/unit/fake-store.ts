// A table-driven ListStore for unit tests of the plugin glue.
import { StoreReplyError, type ListStore, type LookupReply, type LookupRequest } from '../../plugins/lib/store'

export class FakeStore implements ListStore {
  ipAllow = new Map<string, string>()
  domainAllow = new Map<string, string>()
  books = new Map<string, Set<string>>()
  requests: LookupRequest[] = []
  counted: string[] = []
  failWith: Error | null = null

  async lookup(req: LookupRequest): Promise<LookupReply> {
    this.requests.push(req)
    if (this.failWith) throw this.failWith
    const first = (fields: string[] | undefined, m: Map<string, string>) => {
      if (!fields) return undefined
      const f = fields.find((x) => m.has(x))
      return f === undefined ? null : { entry: f, note: m.get(f) ?? '' }
    }
    const reply: LookupReply = {}
    if (req.ipCandidates?.length) reply.ipAllow = first(req.ipCandidates, this.ipAllow)
    if (req.domainCandidates?.length) reply.domainAllow = first(req.domainCandidates, this.domainAllow)
    if (req.books?.length) reply.books = req.books.map((b) => b.members.find((m) => this.books.get(b.owner)?.has(m)) ?? null)
    return reply
  }

  count(fields: string[]): void {
    this.counted.push(...fields)
  }

  async close(): Promise<void> {}

  static wrongType(): StoreReplyError {
    return new StoreReplyError('WRONGTYPE Operation against a key holding the wrong kind of value')
  }
}
