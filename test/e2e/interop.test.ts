// The interop matrix as tests (issue 35): real sending MTAs against the suite's Haraka on the
// IPv6 MX and a plain Postfix on the IPv4 MX. A change that breaks the fallback for one of
// these senders fails here. Bounds are timeouts (with queue kicks where the MTA's retry delay
// is compiled in), never timing assertions. `npm run interop` prints the full matrix.
import assert from 'node:assert/strict'
import { EximSender } from '../support/interop/exim'
import { HarakaSender } from '../support/interop/haraka-sender'
import { OpenSmtpdSender } from '../support/interop/opensmtpd'
import { PostfixInterop } from '../support/interop/postfix'
import { InteropReceiver, runScenario, SCENARIOS, type Outcome, type Undecided } from '../support/interop/scenario'
import type { InteropSender } from '../support/interop/types'
import { requireTestbed } from '../support/net'

const scenario = (id: string) => SCENARIOS.find((s) => s.id === id)!

/** One receiver (per value of undecided) and one sender for a describe block. */
function useBed(undecided: Undecided, start: () => Promise<InteropSender>): { rx: InteropReceiver; sender: InteropSender } {
  const ctx = {} as { rx: InteropReceiver; sender: InteropSender }
  before(async function () {
    this.timeout(40000)
    requireTestbed()
    ctx.rx = await InteropReceiver.start(undecided)
    ctx.sender = await start()
  })
  after(async () => {
    await ctx.sender?.stop()
    await ctx.rx?.stop()
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && ctx.sender) console.log(`${ctx.sender.name} log:\n${ctx.sender.log().slice(-5000)}`)
  })
  return ctx
}

const show = (o: Outcome): string => JSON.stringify(o)

/** Came back over IPv4 in the same delivery attempt, once, with no DSN. */
function assertFallback(o: Outcome, bodies: number): void {
  assert.equal(o.via, 'IPv4 MX', show(o))
  assert.equal(o.copies, 1, show(o))
  assert.equal(o.retries, 0, `same attempt: ${show(o)}`)
  assert.equal(o.bodyCrossings, bodies, show(o))
  assert.equal(o.dsn, false, show(o))
}

/** The MX6 listener's 550 5.5.7 to a sender that does not know MX6: one try, one bounce, no loop. */
function assertBounceNoLoop(o: Outcome): void {
  assert.equal(o.delivered, false, show(o))
  assert.equal(o.dsn, true, `a DSN reached the envelope sender: ${show(o)}`)
  assert.equal(o.ipv6Tries, 1, `no retry after the 550: ${show(o)}`)
  assert.equal(o.bodyCrossings, 1, show(o))
}

// The 550 case only where the sender reads the reply: Exim's default pipelined QUIT and
// half-close make Haraka 3.3.4 drop the connection before it answers after DATA (a race;
// docs/interop.md), so that case runs below with Exim's hosts_avoid_pipelining.
const SAME_ATTEMPT: [string, () => Promise<InteropSender>, boolean][] = [
  ['Postfix', () => PostfixInterop.start(), true],
  ['Exim 4', () => EximSender.start(), false],
]

describe('e2e: interop matrix, senders that come back over IPv4 in the same attempt', function () {
  this.timeout(60000)
  for (const [label, start, with550] of SAME_ATTEMPT) {
    describe(`${label}, undecided=defer (4xx at RCPT)`, () => {
      const bed = useBed('defer', start)
      for (const id of ['rcpt-pref', 'rcpt-equal', 'rcpt-dual']) {
        it(`${id}: ${scenario(id).title}: delivered via the IPv4 MX, no body over IPv6`, async () => {
          assertFallback(await runScenario(bed.sender, bed.rx, scenario(id), { boundMs: 15000, settleMs: 1000 }), 1)
        })
      }
    })
    describe(`${label}, undecided=wait (4xx after DATA)`, () => {
      const bed = useBed('wait', start)
      it('data-pref: delivered via the IPv4 MX; the body crossed twice (IPv6 deferred, IPv4)', async () => {
        const o = await runScenario(bed.sender, bed.rx, scenario('data-pref'), { boundMs: 15000, settleMs: 1000 })
        assertFallback(o, 2)
        assert.equal(o.ipv6Tries, 1, show(o))
      })
      for (const id of ['data-equal', 'data-dual']) {
        it(`${id}: ${scenario(id).title}: delivered via the IPv4 MX`, async () => {
          const o = await runScenario(bed.sender, bed.rx, scenario(id), { boundMs: 15000, settleMs: 1000 })
          // Equal preference may be tried in either order: one body over IPv4, one more if IPv6 came first.
          assertFallback(o, 1 + o.ipv6Tries)
        })
      }
      if (with550) {
        it('mx6-550: a bounce, not a loop', async () => {
          assertBounceNoLoop(await runScenario(bed.sender, bed.rx, scenario('mx6-550'), { boundMs: 15000, settleMs: 1500 }))
        })
      }
    })
  }
  describe('Exim 4 with hosts_avoid_pipelining, undecided=wait', () => {
    const bed = useBed('wait', () => EximSender.start({ pipelining: false }))
    it('mx6-550: a bounce, not a loop', async () => {
      assertBounceNoLoop(await runScenario(bed.sender, bed.rx, scenario('mx6-550'), { boundMs: 15000, settleMs: 1500 }))
    })
  })
})

describe('e2e: interop matrix, senders that stay on the IPv6 MX', function () {
  this.timeout(60000)
  describe('OpenSMTPD: retries the IPv6 MX only (queue runs forced by smtpctl)', () => {
    const bed = useBed('wait', () => OpenSmtpdSender.start())
    it('data-pref: still queued after several retries, every one over IPv6, no DSN', async () => {
      const o = await runScenario(bed.sender, bed.rx, scenario('data-pref'), { boundMs: 5000, kickMs: 1000, settleMs: 0 })
      assert.equal(o.delivered, false, show(o))
      // An attempt may still be in flight at the bound: seen by the receiver, not yet logged.
      assert.ok(o.retries >= 2 && o.ipv6Tries >= o.retries, show(o))
      assert.equal(o.bodyCrossings, o.ipv6Tries, `the body crossed at every attempt: ${show(o)}`)
      assert.equal(o.dsn, false, show(o))
    })
    it('mx6-550: a bounce, not a loop', async () => {
      assertBounceNoLoop(await runScenario(bed.sender, bed.rx, scenario('mx6-550'), { boundMs: 10000, kickMs: 1000, settleMs: 1500 }))
    })
  })

  describe('Haraka outbound without mx6-send: retries the IPv6 MX only', () => {
    const bed = useBed('defer', () => HarakaSender.start(false))
    it('rcpt-pref: still queued after a retry (5 s, the shortest Haraka allows), over IPv6 again', async () => {
      const o = await runScenario(bed.sender, bed.rx, scenario('rcpt-pref'), { boundMs: 7000, settleMs: 0 })
      assert.equal(o.delivered, false, show(o))
      // Each attempt: one IPv6 transaction, then "Temp failing" (back to the queue).
      assert.ok(o.retries >= 2 && o.ipv6Tries >= o.retries, show(o))
      assert.equal(o.dsn, false, show(o))
    })
  })
  describe('Haraka outbound without mx6-send: the 550 5.5.7', () => {
    const bed = useBed('wait', () => HarakaSender.start(false))
    it('mx6-550: a bounce, not a loop', async () => {
      assertBounceNoLoop(await runScenario(bed.sender, bed.rx, scenario('mx6-550'), { boundMs: 10000, settleMs: 1500 }))
    })
  })
})

describe('e2e: interop matrix, Haraka outbound with mx6-send', function () {
  this.timeout(60000)
  const bed = useBed('wait', () => HarakaSender.start(true))
  for (const id of ['data-pref', 'data-dual', 'mx6-550']) {
    it(`${id}: no _mx6 SRV record, so straight to the IPv4 address: never deferred`, async () => {
      const o = await runScenario(bed.sender, bed.rx, scenario(id), { boundMs: 10000, settleMs: 1000 })
      assertFallback(o, 1)
      assert.equal(o.ipv6Tries, 0, show(o))
    })
  }
})
