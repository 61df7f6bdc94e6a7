// mx6-send's Haraka glue with a fake outbound HMailItem and a table-driven DNS client.
import assert from 'node:assert/strict'
import * as fixtures from 'haraka-test-fixtures'
import { CachingResolver, type DnsClient, type RawReply, type RrType } from '../../plugins/lib/dns'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any
const OK = 906
const DENY = 902
const DENYSOFT = 903

const ZONE: Record<string, RawReply> = {
  'SRV _mx6._tcp.mx6.test': { rcode: 0, answers: [{ type: 33, ttl: 0, priority: 0, weight: 0, port: 25, target: 'mx6.host.test' }], authorities: [] },
  'AAAA mx6.host.test': { rcode: 0, answers: [{ type: 28, ttl: 0, address: '2001:db8::6' }], authorities: [] },
  'MX mx6.test': { rcode: 0, answers: [{ type: 15, ttl: 0, priority: 10, exchange: 'mx.host.test' }], authorities: [] },
  'A mx.host.test': { rcode: 0, answers: [{ type: 1, ttl: 0, address: '198.51.100.25' }], authorities: [] },
  'SRV _mx6._tcp.broken.test': { rcode: 2, answers: [], authorities: [] },
}

class Zone implements DnsClient {
  async query(name: string, type: RrType): Promise<RawReply> {
    return ZONE[`${type} ${name}`] ?? { rcode: 3, answers: [], authorities: [] }
  }
}

function setup() {
  const plugin: Any = fixtures.makePlugin('mx6-send')
  plugin.resolver = new CachingResolver(new Zone(), { negativeTtl: 0, maxTtl: 0 })
  plugin.cfg.fallback.logSize = 0
  return plugin
}

function hmail(domain: string) {
  const h: Any = {
    refcount: 1,
    filename: 'q1',
    todo: { domain, uuid: 'U1', mail_from: { user: 'a', host: 'sender.test' }, rcpt_to: [{ original: '<bob@mx6.test>', user: 'bob', host: 'mx6.test' }] },
    getMxCalls: 0,
    logs: [] as string[],
  }
  h.get_mx = () => h.getMxCalls++
  for (const l of ['loginfo', 'lognotice', 'logwarn', 'logerror']) h[l] = (m: string) => h.logs.push(m)
  return h
}

function call(plugin: Any, method: string, ...args: unknown[]): Promise<{ rc: number | undefined; msg: Any }> {
  return new Promise((resolve) => plugin[method]((rc: number | undefined, msg: Any) => resolve({ rc, msg }), ...args))
}

describe('mx6-send plugin glue', () => {
  it('registers get_mx, bounce and deferred hooks', () => {
    const plugin = setup()
    assert.deepEqual(Object.keys(plugin.hooks).sort(), ['bounce', 'deferred', 'get_mx'])
  })

  it('get_mx: MX6 host over IPv6 first, then the regular MX over IPv4', async () => {
    const plugin = setup()
    plugin.cfg.bindIpv6 = '2001:db8:7::99'
    const r = await call(plugin, 'mx6_get_mx', hmail('mx6.test'), 'mx6.test')
    assert.equal(r.rc, OK)
    assert.deepEqual(r.msg, [
      { exchange: '2001:db8::6', port: 25, priority: 0, from_dns: 'mx6.host.test', bind: '2001:db8:7::99' },
      { exchange: '198.51.100.25', port: 25, priority: 1, from_dns: 'mx.host.test' },
    ])
  })

  it('get_mx: a failed SRV lookup defers; a missing domain bounces', async () => {
    const plugin = setup()
    assert.equal((await call(plugin, 'mx6_get_mx', hmail('broken.test'), 'broken.test')).rc, DENYSOFT)
    assert.equal((await call(plugin, 'mx6_get_mx', hmail('nowhere.test'), 'nowhere.test')).rc, DENY)
  })

  it('bounce with 550 5.5.7 from the MX6 host: no bounce, same queue file kept, MX selection restarts IPv4-only', async () => {
    const plugin = setup()
    const h = hmail('mx6.test')
    await call(plugin, 'mx6_get_mx', h, 'mx6.test')
    Object.assign(h.todo.rcpt_to[0], { dsn_smtp_code: '550', dsn_smtp_extc: '5.5.7', dsn_smtp_response: 'MX6 fallback ...', dsn_remote_mta: '2001:db8::6' })
    const r = await call(plugin, 'mx6_bounce', h, { mx: { exchange: '2001:db8::6', port: 25, from_dns: 'mx6.host.test' } })
    assert.equal(r.rc, OK, 'OK suppresses the bounce message')
    assert.equal(h.refcount, 2, 'the extra reference keeps the queue file when Haraka discards')
    await new Promise((res) => setImmediate(res))
    assert.equal(h.getMxCalls, 1)
    const again = await call(plugin, 'mx6_get_mx', h, 'mx6.test')
    assert.deepEqual(again.msg.map((m: Any) => m.exchange), ['198.51.100.25'])
  })

  it('bounce with another 5xx, or from a regular MX, bounces as usual', async () => {
    const plugin = setup()
    const h = hmail('mx6.test')
    await call(plugin, 'mx6_get_mx', h, 'mx6.test')
    Object.assign(h.todo.rcpt_to[0], { dsn_smtp_code: '550', dsn_smtp_extc: '5.1.1' })
    assert.equal((await call(plugin, 'mx6_bounce', h, { mx: { exchange: '2001:db8::6', port: 25 } })).rc, undefined)
    Object.assign(h.todo.rcpt_to[0], { dsn_smtp_code: '550', dsn_smtp_extc: '5.5.7' })
    assert.equal((await call(plugin, 'mx6_bounce', h, { mx: { exchange: '198.51.100.25', port: 25 } })).rc, undefined)
    assert.equal(h.refcount, 1)
    assert.equal(h.getMxCalls, 0)
  })

  it('deferred with the draft\'s 456 from the MX6 host falls back; another 4xx is an ordinary deferral', async () => {
    const plugin = setup()
    const h = hmail('mx6.test')
    await call(plugin, 'mx6_get_mx', h, 'mx6.test')
    Object.assign(h.todo.rcpt_to[0], { dsn_smtp_code: '451', dsn_smtp_extc: '4.7.26', dsn_remote_mta: '2001:db8::6' })
    assert.equal((await call(plugin, 'mx6_deferred', h, { delay: 5 })).rc, undefined)
    Object.assign(h.todo.rcpt_to[0], { dsn_smtp_code: '456', dsn_smtp_extc: '4.5.7' })
    assert.equal((await call(plugin, 'mx6_deferred', h, { delay: 5 })).rc, OK)
    assert.equal(h.refcount, 2)
  })
})
