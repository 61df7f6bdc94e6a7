// What the benchmark's lists hold, in the suite's Redis and in rspamd's map files alike, so
// that every configuration decides the same mail on the same basis.
import { Redis } from 'ioredis'
import type { RspamdLists } from '../../test/support/rspamd'

/** smtp-source's peers (the allow-listed paths): in ip:allow. */
export const ALLOWED_NET = '2001:db8:25::/48'
/** The DKIM-signed path's d= and From domain: in domain:allow. */
export const ALLOWED_DOMAIN = 'allowed.test'
/** List entries besides those two, at the benchmark's ordinary size. */
export const FILLER = 10

/** The filler entry `i` of ip:allow (a /64 nobody connects from). */
function filler(i: number): string {
  return `2001:db8:${(0x1000 + Math.floor(i / 65536)).toString(16)}:${(i % 65536).toString(16)}::/64`
}

/**
 * Adds entries until the list holds `size`, in batches (HSET with many fields per command),
 * under the key prefix `prefix` (each list size of the scaling rounds has its own).
 */
export async function fill(port: number, size: number, prefix = 'mx6:'): Promise<void> {
  const c = new Redis({ port, host: '127.0.0.1' })
  const have = await c.hlen(`${prefix}ip:allow`)
  for (let i = have; i < size; ) {
    const p = c.pipeline()
    for (let b = 0; b < 20 && i < size; b++) {
      const fields: string[] = []
      for (let k = 0; k < 1000 && i < size; k++, i++) fields.push(filler(i), 'bench filler')
      p.hset(`${prefix}ip:allow`, ...fields)
    }
    await p.exec()
  }
  // Address books, as many members in total as the list has entries (100 per book).
  const books = Math.ceil(size / 100)
  for (let b = 0; b < books; ) {
    const p = c.pipeline()
    for (let k = 0; k < 500 && b < books; k++, b++) p.sadd(`${prefix}book:user${b}@rcpt.test`, ...Array.from({ length: 100 }, (_, m) => `friend${m}@other${b}.test`))
    await p.exec()
  }
  c.disconnect()
}

/** The benchmark's lists in a Redis (prefix mx6:): the two entries the paths need, and the filler. */
export async function seed(port: number): Promise<void> {
  const c = new Redis({ port, host: '127.0.0.1' })
  await c.hset('mx6:ip:allow', ALLOWED_NET, 'smtp-source peers (bench)')
  await c.hset('mx6:domain:allow', ALLOWED_DOMAIN, 'DKIM-signed bench messages')
  c.disconnect()
  await fill(port, FILLER)
}

/** The same lists as rspamd's map files: ip:allow holds ALLOWED_NET and filler 1 to FILLER - 1 (seed()). rspamd has no address books; no path uses one. */
export function rspamdLists(): RspamdLists {
  return { ipAllow: [ALLOWED_NET, ...Array.from({ length: FILLER - 1 }, (_, i) => filler(i + 1))], domainAllow: [ALLOWED_DOMAIN] }
}
