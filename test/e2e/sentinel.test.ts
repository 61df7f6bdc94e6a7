// A Sentinel failover during load (issue 8, part): IPv6 deferred while Haraka has no
// master, nothing accepted without a basis, normal again after; IPv4 never affected.
import assert from 'node:assert/strict'
import { HarakaServer } from '../support/haraka'
import { requireTestbed } from '../support/net'
import { poll, sleep } from '../support/proc'
import { V4MX, V6MX } from '../support/receiver'
import { RedisSentinelSet } from '../support/sentinel'
import { smtpSession } from '../support/smtp'

describe('e2e: mx6-receive through Redis Sentinel, with a failover during load', function () {
  this.timeout(120000)
  let set: RedisSentinelSet
  let haraka: HarakaServer

  before(async function () {
    this.timeout(60000)
    requireTestbed()
    set = await RedisSentinelSet.start()
    await set.master.cli('HSET', 'mx6:ip:allow', '2001:db8:7::a00/120', 'partner')
    haraka = await HarakaServer.start({
      listen: [`[${V6MX}]:25`, `${V4MX}:25`],
      plugins: ['spf', 'mx6-receive', 'rcpt_to.in_host_list', 'queue-capture'],
      config: { 'mx6-receive.ini': `[main]\nundecided=defer\nlint_interval=0\n[redis]\nsentinels=${set.sentinels.join(',')}\nsentinel_name=mymaster\ntimeout=300\n` },
    })
  })
  after(async () => {
    await haraka?.stop()
    await set?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(haraka.log().slice(-6000))
  })

  it('finds the master through the sentinel', async () => {
    const r = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::a10', ehlo: 'x.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: s\r\n\r\nx\r\n' })
    assert.equal(r.dataEnd?.code, 250, r.transcript)
    assert.match(haraka.log(), /using redis redis master "mymaster" via sentinels 127\.0\.0\.1:\d+/)
  })

  it('master killed under load: deferrals (4xx) while it fails over, never an unfounded accept or a 5xx, normal after', async () => {
    const outcomes: Array<{ at: number; kind: number; code: number }> = []
    let running = true
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const kind = (w + i) % 3 // 0: IPv4, 1: allowed IPv6, 2: unknown IPv6
        const peer = kind === 0 ? `192.0.2.${200 + w}` : kind === 1 ? `2001:db8:7::a${(w % 16).toString(16)}0` : `2001:db8:7::b${(w % 16).toString(16)}0`
        const r = await smtpSession({ host: kind === 0 ? V4MX : V6MX, port: 25, localAddress: peer, ehlo: 'x.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: s\r\n\r\nx\r\n', timeoutMs: 20000 }).catch(() => null)
        outcomes.push({ at: Date.now(), kind, code: r ? (r.dataEnd?.code ?? r.rcpt[0]?.code ?? r.mail.code) : 0 })
      }
    }
    const all = Promise.all([0, 1, 2, 3].map(worker))
    await sleep(1000)
    const oldPort = await set.masterPort()
    const killed = Date.now()
    await set.master.stop()
    await poll(async () => ((await set.masterPort()) !== oldPort ? true : undefined), 30000, 'sentinel failover')
    const promoted = Date.now()
    const back = await poll(() => outcomes.find((o) => o.at > promoted && o.kind === 1 && o.code === 250)?.at, 20000, 'allowed IPv6 accepted after the failover')
    await sleep(800)
    running = false
    await all
    assert.deepEqual([...new Set(outcomes.filter((o) => o.kind === 0).map((o) => o.code))], [250], 'IPv4 always accepted')
    assert.deepEqual([...new Set(outcomes.filter((o) => o.kind === 2).map((o) => o.code))], [451], 'unknown IPv6 never accepted, never 5xx')
    assert.ok(outcomes.every((o) => o.code !== 0 && o.code < 500), 'no 5xx, no broken session')
    // "Gone", as Haraka's log tells it: from the lost connection to the master (until then the
    // shutting-down master takes no writes, and the peer list cache answers for the allowed
    // peers) until it is connected to the new one (which may be a little before this test's
    // own poll of the sentinel notices the promotion). 100 ms for sessions already past RCPT.
    const logged = (what: RegExp) =>
      haraka
        .log()
        .split('\n')
        .map((l) => (what.test(l) ? Date.parse(l.split(' ')[0]) : NaN))
        .find((t) => t > killed)
    const lost = logged(/\[mx6-receive\] redis .*; IPv6 peers are deferred until it is back/)
    const again = logged(/\[mx6-receive\] redis .*: back after \d+ s; /)
    assert.ok(lost !== undefined && again !== undefined, 'Haraka logs the lost connection and the new one')
    const during = outcomes.filter((o) => o.kind === 1 && o.at > lost + 100 && o.at < Math.min(promoted, again))
    assert.ok(during.length > 0, 'allowed IPv6 sessions while the master was gone')
    const accepted = during.filter((o) => o.code !== 451).map((o) => `${o.code} at +${o.at - killed} ms`)
    assert.deepEqual(accepted, [], `allowed IPv6 deferred (not accepted) while the master is gone (killed +0 ms, connection lost +${lost - killed} ms, connected again +${again - killed} ms, promotion seen +${promoted - killed} ms)`)
    console.log(`      ${outcomes.length} messages; failover took ${((promoted - killed) / 1000).toFixed(1)} s, IPv6 decisions normal ${((back - promoted) / 1000).toFixed(2)} s after it`)
  })
})
