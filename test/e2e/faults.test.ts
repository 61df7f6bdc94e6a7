// Faults under load (issue 8): Redis killed and restarted, and stalled, while mixed
// IPv4 and IPv6 sessions run; malformed SMTP from the peer.
import assert from 'node:assert/strict'
import net from 'node:net'
import DNS from 'dns2'
import { poll, sleep } from '../support/proc'
import { useReceiver, V4MX, V6MX } from '../support/receiver'
import { smtpSession } from '../support/smtp'

interface Outcome {
  at: number
  v6: boolean
  allowed: boolean
  code: number
}

describe('e2e: faults under load', function () {
  this.timeout(120000)
  // undecided=defer: a verdict at RCPT for every message; timeout=300 ms bounds a stalled Redis.
  const rx = useReceiver({ listen: [`[${V6MX}]:25`, `${V4MX}:25`], ini: '[main]\nundecided=defer\nlint_interval=0' })
  before(async () => {
    await rx.redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::300/120', 'allowed half of the load')
  })

  /** Workers sending until `stop()`; allowed peers are in 2001:db8:7::300/120, unknown ones in ::400/120. */
  function load(workers: number): { outcomes: Outcome[]; stop: () => Promise<void> } {
    const outcomes: Outcome[] = []
    let running = true
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; running; i++) {
        const kind = (w + i) % 3 // 0: IPv4, 1: allowed IPv6, 2: unknown IPv6
        const v6 = kind !== 0
        const peer = kind === 0 ? `192.0.2.${100 + w}` : kind === 1 ? `2001:db8:7::3${(w % 16).toString(16)}0` : `2001:db8:7::4${(w % 16).toString(16)}0`
        const r = await smtpSession({ host: v6 ? V6MX : V4MX, port: 25, localAddress: peer, ehlo: 'load.neutral.test', mailFrom: 'load@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: load\r\n\r\nx\r\n', timeoutMs: 20000 }).catch(() => null)
        const code = r ? (r.dataEnd?.code ?? r.rcpt[0]?.code ?? r.mail.code) : 0
        outcomes.push({ at: Date.now(), v6, allowed: kind === 1, code })
      }
    }
    const all = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)))
    return {
      outcomes,
      stop: async () => {
        running = false
        await all
      },
    }
  }

  it('Redis killed and restarted mid-load: no unfounded IPv6 accept, no 5xx, every IPv4 message accepted; recovers by itself', async () => {
    const l = load(6)
    await sleep(1500)
    await rx.redis.stop()
    const down = Date.now()
    await sleep(1500)
    await rx.redis.restart()
    await rx.redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::300/120', 'allowed half of the load')
    const up = Date.now()
    const back = await poll(() => l.outcomes.find((o) => o.at > up && o.allowed && o.code === 250)?.at, 20000, 'an allowed IPv6 accept after the restart')
    await sleep(1000)
    await l.stop()
    const o = l.outcomes
    const v4 = o.filter((x) => !x.v6)
    const unknown = o.filter((x) => x.v6 && !x.allowed)
    const allowedDuringOutage = o.filter((x) => x.allowed && x.at > down + 200 && x.at < up)
    assert.ok(o.length > 30, `${o.length} messages`)
    assert.deepEqual([...new Set(v4.map((x) => x.code))], [250], 'every IPv4 message accepted')
    assert.deepEqual([...new Set(unknown.map((x) => x.code))], [451], 'unknown IPv6: always 451, never 250 or 5xx')
    assert.ok(o.every((x) => x.code < 500), 'no 5xx at all')
    assert.ok(allowedDuringOutage.length > 0 && allowedDuringOutage.every((x) => x.code === 451), 'allowed IPv6 peers deferred while Redis is down')
    const recovery = (back - up) / 1000
    console.log(`      ${o.length} messages; IPv6 decisions worked again ${recovery.toFixed(2)} s after Redis returned`)
    assert.ok(recovery < 5, `recovery took ${recovery} s`)
  })

  it('a 10-second Redis outage under load: one line when it starts, one when it ends, not a line per message', async () => {
    const l = load(6)
    await sleep(1000)
    const mark = rx.haraka.logSize()
    await rx.redis.stop()
    await sleep(10000)
    await rx.redis.restart()
    await rx.redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::300/120', 'allowed half of the load')
    const back = await poll(() => (/\[mx6-receive\] redis [^\n]*: back after \d+ s; (\d+) decisions deferred or writes dropped meanwhile/.exec(rx.haraka.logSince(mark)) ?? undefined), 20000, 'the end of the outage in the log')
    await l.stop()
    const log = rx.haraka.logSince(mark)
    const deferred = l.outcomes.filter((x) => x.v6 && x.code === 451).length
    const lines = log.split('\n').filter((x) => /\[mx6-receive\]/.test(x) && /\[(ERROR|WARN)\]/.test(x))
    console.log(`      ${deferred} IPv6 messages deferred during the run; mx6-receive logged ${lines.length} error/warning line(s); the outage line counts ${back[1]}`)
    assert.ok(deferred > 20, `${deferred} deferred`)
    assert.equal(lines.length, 1, lines.join('\n'))
    assert.match(lines[0], /\[mx6-receive\] redis redis:\/\/127\.0\.0\.1:\d+\/0: .*; IPv6 peers are deferred until it is back/)
    assert.ok(Number(back[1]) > 20, 'the end line says how much the outage affected')
  })

  it('Redis stalled (CLIENT PAUSE): a lookup Redis must answer times out within the bound and defers; a peer the cache knows, and IPv4, unaffected', async () => {
    const session = (localAddress: string, host = V6MX) => smtpSession({ host, port: 25, localAddress, ehlo: 'x.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: s\r\n\r\nx\r\n' })
    // The peer list cache holds the answer for this allowed peer (Redis reports no change while paused).
    assert.equal((await session('2001:db8:7::310')).dataEnd?.code, 250)
    await rx.redis.cli('CLIENT', 'PAUSE', '3000', 'ALL')
    const t0 = Date.now()
    // An allowed peer never seen before: its lookup must go to Redis.
    const fresh = await session('2001:db8:7::3f7')
    const took = Date.now() - t0
    const cached = await session('2001:db8:7::310')
    const v4 = await session('192.0.2.120', V4MX)
    assert.equal(fresh.rcpt[0].code, 451, fresh.transcript)
    assert.ok(took < 2500, `IPv6 session took ${took} ms with a 300 ms bound`)
    assert.equal(cached.dataEnd?.code, 250, cached.transcript)
    assert.equal(v4.dataEnd?.code, 250)
    assert.match(rx.haraka.log(), /\[mx6-receive\] redis .*: (Command timed out|no answer from redis within \d+ ms); IPv6 peers are deferred until it is back/)
    await sleep(3000)
  })

  it('malformed SMTP from an IPv6 peer is answered, the plugin keeps working', async () => {
    const junk = async (lines: Buffer): Promise<string> =>
      new Promise((resolve) => {
        const s = net.connect({ host: V6MX, port: 25, localAddress: '2001:db8:7::320' })
        let buf = ''
        s.on('data', (d) => (buf += d.toString('latin1')))
        s.on('connect', () => s.write(lines))
        s.setTimeout(3000, () => s.destroy())
        s.on('close', () => resolve(buf))
        setTimeout(() => s.end('QUIT\r\n'), 800)
      })
    const out = [
      await junk(Buffer.from(`EHLO x.test\r\nMAIL FROM:<${'a'.repeat(5000)}@neutral.test>\r\n`)),
      await junk(Buffer.from('EHLO x.test\nMAIL FROM:<a@neutral.test>\nRCPT TO:<bob@rcpt.test>\n')),
      await junk(Buffer.from('EHLO x.test\r\nMAIL FROM:<a@neutral.test>\r\nRCPT TO:<bob@rcpt.test>\r\nRCPT TO:<x@rcpt.test>\r\nDATA\r\nSubject: p\r\n\r\nx\r\n.\r\nRSET\r\nRSET\r\nMAIL FROM:<b@neutral.test>\r\n')),
      await junk(Buffer.concat([Buffer.from('EHLO x.test\r\nMAIL FROM:<\xe4\xf6@neutral.test>\r\nRCPT TO:<b\xfc\xff@rcpt.test>\r\n', 'latin1')])),
      await junk(Buffer.from(`EHLO ${'h'.repeat(3000)}\r\nMAIL FROM:<a@neutral.test>\r\nRCPT TO:<bob@rcpt.test>\r\n`)),
    ]
    // Each gets a defined SMTP answer (a reply code), whatever Haraka itself makes of the junk.
    for (const o of out) assert.match(o, /^\d{3}[ -]/m, o)
    assert.doesNotMatch(rx.haraka.log(), /TypeError|ReferenceError|decision failed/)
    const ok = await smtpSession({ host: V6MX, port: 25, localAddress: '2001:db8:7::301', ehlo: 'x.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: 'Subject: s\r\n\r\nx\r\n' })
    assert.equal(ok.dataEnd?.code, 250, 'still deciding')
  })
})

describe('e2e: a DNS outage (the name servers mx6-receive asks stop answering)', function () {
  this.timeout(60000)
  // A name server of the test's own, on a loopback address in the test namespace: it answers
  // NXDOMAIN to everything until it is closed (then queries are refused: no answer at all).
  const NS = '127.0.0.77'
  let server: ReturnType<typeof DNS.createServer> | null = null
  const serve = async () => {
    server = DNS.createServer({
      udp: true,
      handle: (request, send) => {
        const response = DNS.Packet.createResponseFromRequest(request)
        response.header.rcode = 3
        send(response)
      },
    })
    await server.listen({ udp: { port: 53, address: NS } })
  }
  const stopServer = async () => {
    await server?.close()
    server = null
  }
  before(serve)
  after(stopServer)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`], ini: `[green]\nhost_green=true\ndns_servers=${NS}\ndns_timeout=500` })
  // Each message from its own peer and From domain: new names, so the resolver's cache never answers.
  let n = 0x500
  const send = () => {
    const id = (n++).toString(16)
    return smtpSession({ host: V6MX, port: 25, localAddress: `2001:db8:7::${id}`, ehlo: 'x.neutral.test', mailFrom: 'a@neutral.test', rcptTo: ['bob@rcpt.test'], data: `From: a@d${id}.neutral.test\r\nSubject: dns\r\n\r\nx\r\n` })
  }

  it('one line when it starts, one when it ends with the count, nothing per message; the mail is deferred, never accepted', async () => {
    assert.equal((await send()).dataEnd?.code, 451)
    const mark = rx.haraka.logSize()
    await stopServer()
    for (let i = 0; i < 8; i++) assert.equal((await send()).dataEnd?.code, 451)
    await serve()
    assert.equal((await send()).dataEnd?.code, 451)
    const log = rx.haraka.logSince(mark)
    const lines = log.split('\n').filter((x) => /\[mx6-receive\]/.test(x) && /\[(ERROR|WARN)\]/.test(x))
    assert.equal(lines.length, 1, lines.join('\n'))
    assert.match(lines[0], /\[mx6-receive\] dns 127\.0\.0\.77: .*; peer DNS signals, DMARC and ARC count as absent \(IPv6 mail without another basis is deferred\) until it is back/)
    const back = /\[mx6-receive\] dns 127\.0\.0\.77: back after \d+ s; (\d+) lookups without an answer meanwhile/.exec(log)
    assert.ok(back, log)
    assert.ok(Number(back[1]) >= 8, `${back[1]} lookups counted`)
  })
})
