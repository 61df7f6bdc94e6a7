// mx6ctl explain gives the same answer as the plugin for the same facts: real messages go
// through a real Haraka (spf, dkim, mx6-receive), the plugin's recorded decision is read back
// (capture sidecar for accepted mail, the Haraka log for deferred mail), and explain runs
// against the same Redis and config with the facts the plugin saw (SPF result, DKIM domains).
import assert from 'node:assert/strict'
import path from 'node:path'
import { main } from '../../scripts/mx6ctl'
import type { HarakaServer } from '../support/haraka'
import { poll } from '../support/proc'
import { MX6, useReceiver, V4MX, V6MX } from '../support/receiver'
import type { RedisServer } from '../support/redis'
import { dkimSign, smtpSession, type SessionResult } from '../support/smtp'

const KEYS = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'dkim')

interface Run {
  code: number
  out: string[]
  err: string[]
}

async function ctl(args: string[]): Promise<Run> {
  const out: string[] = []
  const err: string[] = []
  const split = (t: string) => t.replace(/\n$/, '').split('\n')
  const code = await main(args, { out: (t) => void out.push(...split(t)), err: (t) => void err.push(...split(t)) })
  return { code, out, err }
}

interface Scenario {
  peer: string
  helo?: string
  mailFrom: string
  /** The From header; default: the envelope sender. */
  from?: string
  rcpt?: string[]
  /** Listener address (default: the regular IPv6 MX, or the IPv4 MX for IPv4 peers). */
  host?: string
  /** DKIM-sign as this domain (keys in test/fixtures/dkim). */
  sign?: string
}

/** What the plugin decided and the facts it decided on. */
interface Recorded {
  accepted: boolean
  verdict: string
  rule: string
  reason: string
  /** The DMARC (and ARC) part of the decision, as the log line and results name it; null without one. */
  auth: string | null
  /** haraka-plugin-spf's MAIL FROM result, lower case ("none" when it recorded none). */
  spf: string
  dkimPass: string[]
  localIp: string
}

function message(s: Scenario, rcpt: string[]): string {
  const from = s.from ?? s.mailFrom
  return [`From: ${from}`, `To: ${rcpt.join(', ')}`, `Subject: explain ${s.peer}`, `Message-ID: <x${Date.now()}${Math.random()}@test>`, '', 'Hello.', ''].join('\r\n')
}

async function send(s: Scenario): Promise<SessionResult> {
  const rcpt = s.rcpt ?? ['bob@rcpt.test']
  const data = s.sign
    ? await dkimSign({ domain: s.sign, selector: 's1', keyFile: path.join(KEYS, `${s.sign}.s1.key`), from: s.from ?? s.mailFrom, to: rcpt, subject: `explain ${s.peer}`, body: 'Signed.' })
    : message(s, rcpt)
  return smtpSession({ host: s.host ?? (s.peer.includes(':') ? V6MX : V4MX), port: 25, localAddress: s.peer, ehlo: s.helo ?? 'client.other.test', mailFrom: s.mailFrom, rcptTo: rcpt, data })
}

const connects = (log: string, peer: string): string[] => log.split('\n').filter((l) => l.includes(`connect ip=${peer} `))

/** The log lines of the n-th (0-based) connection from `peer` once it is over, or undefined. */
function connectionLog(log: string, peer: string, n: number): string[] | undefined {
  const m = /\[([0-9A-F-]{36})\]/i.exec(connects(log, peer)[n] ?? '')
  if (!m) return undefined
  const lines = log.split('\n').filter((l) => l.includes(`[${m[1]}`))
  return lines.some((l) => l.includes('[core] disconnect ')) ? lines : undefined
}

function fromLog(lines: string[], peer: string): Recorded {
  const decisions = lines.map((l) => /\[mx6-receive\] (rcpt|data_post)(?: <[^>]*>)? verdict=(\S+) rule=(\S+): (.*?)(?: \[((?:dmarc|arc)=[^\]]*)\])?(?: \[peer signals: .*\])?(?: \(\d+\.\d+ ms\))?$/.exec(l)).filter((x) => x !== null)
  const last = decisions.at(-1)
  assert.ok(last, `no mx6-receive decision logged for ${peer}:\n${lines.join('\n')}`)
  const spf = lines.map((l) => /\[spf\] identity=mfrom .* result=(\w+)/.exec(l)).find((x) => x !== null)
  const dkim = lines.map((l) => /\[dkim\] identity="[^"]*" domain="([^"]+)" selector="[^"]*" result=pass/.exec(l)).filter((x) => x !== null)
  const connect = lines.find((l) => l.includes(`connect ip=${peer} `)) ?? ''
  return {
    accepted: false,
    verdict: last[2],
    rule: last[3],
    reason: last[4],
    auth: last[5] ?? null,
    spf: spf ? spf[1].toLowerCase() : 'none',
    dkimPass: dkim.map((x) => x[1]),
    localIp: /local_ip=(\S+)/.exec(connect)?.[1] ?? '',
  }
}

describe('e2e: mx6ctl explain decides like mx6-receive', function () {
  this.timeout(60000)
  const rx = useReceiver({ listen: [`[${V6MX}]:25`, `[${MX6}]:25`, `${V4MX}:25`], ini: `[mx6]\nlisteners=${MX6}\n[green]\nfcrdns=true\n` })
  let redis: RedisServer
  let haraka: HarakaServer

  before(async () => {
    ;({ redis, haraka } = rx)
    await redis.cli('HSET', 'mx6:ip:allow', '2001:db8:7::100/120', 'partner relay')
    await redis.cli('HSET', 'mx6:domain:allow', 'allowed.test', 'partner')
    await redis.cli('HSET', 'mx6:domain:allow', 'nospf.test', 'partner without SPF')
    await redis.cli('HSET', 'mx6:spf:guess', 'nospf.test', 'v=spf1 ip6:2001:db8:7::/64 -all')
    await redis.cli('SADD', 'mx6:book:bob@rcpt.test', 'friend@other.test')
  })

  /** Sends the message and reads back what the plugin decided. */
  async function plugin(s: Scenario): Promise<Recorded> {
    const before = haraka.captured().length
    const seen = connects(haraka.log(), s.peer).length
    const r = await send(s)
    if (r.dataEnd?.code === 250) {
      const meta = (await haraka.waitForCaptured(before + 1)).at(-1)!.meta
      assert.equal(meta.remote_ip, s.peer)
      // A peer the plugin leaves alone (IPv4) gets no results entry: "untouched".
      const res = (meta.results?.['mx6-receive'] ?? { verdict: 'untouched', rule: '', reason: '' }) as Record<string, unknown>
      const spf = meta.results?.spf as Record<string, unknown> | undefined
      const dkim = meta.results?.dkim as Record<string, unknown> | undefined
      const pass = dkim?.pass
      return {
        accepted: true,
        verdict: String(res.verdict),
        rule: String(res.rule),
        reason: String(res.reason),
        auth: typeof res.auth === 'string' ? res.auth : null,
        spf: spf?.scope === 'mfrom' && typeof spf.result === 'string' ? spf.result.toLowerCase() : 'none',
        dkimPass: Array.isArray(pass) ? pass.map(String) : pass ? [String(pass)] : [],
        localIp: meta.local_ip,
      }
    }
    assert.ok(r.dataEnd || r.rcpt.some((x) => x.code >= 400), r.transcript)
    // Deferred: the decision is in the log, once Haraka has written this connection's lines.
    const lines = await poll(() => connectionLog(haraka.log(), s.peer, seen), 5000, `the log of connection ${seen + 1} from ${s.peer}`)
    return fromLog(lines, s.peer)
  }

  /** explain with the facts the plugin saw, against the same instance (--config). */
  async function explain(s: Scenario, rec: Recorded, extra: string[] = []): Promise<Record<string, any>> {
    const args = ['--config', haraka.dir, 'explain', '--ip', s.peer, '--helo', s.helo ?? 'client.other.test', '--mail-from', s.mailFrom, '--spf', rec.spf, '--listener', rec.localIp, '--json', ...extra]
    if (s.from) args.push('--from', s.from)
    for (const r of s.rcpt ?? ['bob@rcpt.test']) args.push('--rcpt', r)
    if (rec.dkimPass.length) args.push('--dkim-pass', rec.dkimPass.join(','))
    const r = await ctl(args)
    assert.equal(r.code, 0, [...r.out, ...r.err].join('\n'))
    return JSON.parse(r.out.join('\n')) as Record<string, any>
  }

  async function same(s: Scenario, want: { accepted: boolean; verdict: string; rule: string }): Promise<Record<string, any>> {
    const rec = await plugin(s)
    assert.deepEqual({ accepted: rec.accepted, verdict: rec.verdict, rule: rec.rule }, want, `the plugin decided ${rec.verdict}/${rec.rule}: ${rec.reason}`)
    const e = await explain(s, rec)
    assert.deepEqual([e.final.verdict, e.final.rule], [rec.verdict, rec.rule], `explain: ${e.final.reason}`)
    assert.equal(e.final.reason, rec.reason)
    assert.equal(e.dmarc?.authResults ?? null, rec.auth, 'the DMARC outcome')
    return e
  }

  it('unknown IPv6 peer: deferred after DATA, rule none; explain names the commands that would create a basis', async () => {
    const e = await same({ peer: '2001:db8:7::20', helo: 'x.neutral.test', mailFrom: 'someone@neutral.test' }, { accepted: false, verdict: 'defer', rule: 'none' })
    assert.equal(e.spf.result, 'neutral')
    assert.deepEqual(e.changes.map((c: { commands: string[] }) => c.commands), [['mx6ctl allow ip add 2001:db8:7::/64']])
    assert.ok(e.notes.some((n: string) => n.startsWith('no domain rule can apply: the From domain neutral.test is not authenticated')), e.notes.join('\n'))
  })

  it('peer inside an ip:allow CIDR: trusted at RCPT, nothing to change', async () => {
    const e = await same({ peer: '2001:db8:7::1a0', mailFrom: 'someone@neutral.test' }, { accepted: true, verdict: 'trusted', rule: 'ip:allow' })
    assert.equal(e.rcpts[0].decision.rule, 'ip:allow')
    assert.deepEqual(e.changes, [])
  })

  it('SPF pass for an allowed domain with an aligned From: trusted by domain:allow', async () => {
    const e = await same({ peer: '2001:db8:7::30', mailFrom: 'news@allowed.test' }, { accepted: true, verdict: 'trusted', rule: 'domain:allow' })
    assert.equal(e.spf.result, 'pass')
    assert.deepEqual(e.alignedDomains, ['allowed.test'])
  })

  it('spoofed From of an allowed domain (SPF passes for another domain): deferred, and explain says why no domain rule applies', async () => {
    const e = await same({ peer: '2001:db8:7::34', mailFrom: 'x@other.test', from: 'ceo@allowed.test' }, { accepted: false, verdict: 'defer', rule: 'none' })
    assert.deepEqual(e.alignedDomains, [])
    assert.ok(
      e.notes.some((n: string) => /From domain allowed\.test is not authenticated: .*have: spf=pass other\.test, not aligned with allowed\.test/.test(n)),
      e.notes.join('\n'),
    )
    assert.ok(!e.changes.some((c: { commands: string[] }) => c.commands.some((x) => x.includes('allow domain add'))))
  })

  it('DKIM-signed From of an allowed domain, envelope of another: trusted after DATA', async () => {
    const e = await same({ peer: '2001:db8:7::32', mailFrom: 'bounce@neutral.test', from: 'ceo@allowed.test', sign: 'allowed.test' }, { accepted: true, verdict: 'trusted', rule: 'domain:allow' })
    assert.deepEqual(e.dkimPass, ['allowed.test'])
    assert.equal(e.phase, 'data_post')
  })

  it('address book: SPF-authenticated envelope sender in the recipient book (sub-address dropped)', async () => {
    const e = await same({ peer: '2001:db8:7::40', mailFrom: 'friend@other.test', rcpt: ['bob+news@rcpt.test'] }, { accepted: true, verdict: 'trusted', rule: 'book' })
    assert.equal(e.rcpts[0].mailbox.address, 'bob@rcpt.test')
  })

  it('FCrDNS from 2001:db8:7::10 with HELO client.other.test: green, through the same DNS', async () => {
    const e = await same({ peer: '2001:db8:7::10', helo: 'client.other.test', mailFrom: 'a@neutral.test' }, { accepted: true, verdict: 'green', rule: 'fcrdns' })
    assert.equal(e.peerSignals.fcrdns.outcome, 'pass')
    assert.deepEqual(e.changes.map((c: { commands: string[] }) => c.commands[0]), ['mx6ctl allow ip add 2001:db8:7::/64'])
  })

  it('the same peer with another HELO: deferred; explain points at the HELO and at host:green', async () => {
    const e = await same({ peer: '2001:db8:7::10', helo: 'other-name.neutral.test', mailFrom: 'a@neutral.test' }, { accepted: false, verdict: 'defer', rule: 'none' })
    assert.ok(e.notes.some((n: string) => n.includes('with HELO client.other.test the fcrdns green rule would apply')), e.notes.join('\n'))
    assert.ok(e.changes.some((c: { commands: string[]; verdict: string }) => c.commands[0] === 'mx6ctl green host add client.other.test' && c.verdict === 'green'))
  })

  it('MX6 listener: no basis means the fallback reply after DATA', async () => {
    const s = { peer: '2001:db8:7::21', mailFrom: 'someone@neutral.test', host: MX6 }
    const e = await same(s, { accepted: false, verdict: 'fallback', rule: 'none' })
    assert.equal(e.mx6, true)
    // Without --listener it is a regular session: deferred instead.
    const plain = JSON.parse((await ctl(['--config', haraka.dir, 'explain', '--ip', s.peer, '--mail-from', s.mailFrom, '--rcpt', 'bob@rcpt.test', '--spf', 'neutral', '--json'])).out.join('\n'))
    assert.deepEqual([plain.mx6, plain.final.verdict], [false, 'defer'])
  })

  it('last-resort SPF: the plugin saw SPF none, explain evaluates the same stored record', async () => {
    const e = await same({ peer: '2001:db8:7::44', helo: 'x.nospf.test', mailFrom: 'a@nospf.test' }, { accepted: true, verdict: 'trusted', rule: 'domain:allow' })
    assert.equal(e.spfAssumed, false)
    assert.deepEqual([e.spf.result, e.spf.guess, e.guess.source], ['pass', true, 'redis'])
  })

  it('IPv4 peer: not acted on, by the plugin or by explain', async () => {
    const rec = await plugin({ peer: '192.0.2.12', mailFrom: 'someone@neutral.test' })
    assert.deepEqual([rec.accepted, rec.verdict], [true, 'untouched'])
    const e = await explain({ peer: '192.0.2.12', mailFrom: 'someone@neutral.test' }, rec)
    assert.deepEqual([e.final.verdict, e.final.rule], ['skip', 'ipv4'])
    assert.ok(e.notes.some((n: string) => n.startsWith('mx6-receive does not act on IPv4 peers')))
  })

  it('a suggested command, run as printed, makes the next message trusted', async () => {
    const s = { peer: '2001:db8:7::36', mailFrom: 'stranger@other.test' }
    const rec = await plugin(s)
    assert.deepEqual([rec.accepted, rec.verdict], [false, 'defer'])
    const e = await explain(s, rec)
    const book = e.changes.find((c: { commands: string[] }) => c.commands[0].startsWith('mx6ctl book add'))
    assert.deepEqual(book?.commands, ['mx6ctl book add bob@rcpt.test stranger@other.test'])
    assert.ok(e.changes.some((c: { commands: string[] }) => c.commands[0] === 'mx6ctl allow domain add other.test'))
    const words = (book.commands[0] as string).split(' ').slice(1)
    const added = await ctl(['--config', haraka.dir, ...words])
    assert.equal(added.code, 0, [...added.out, ...added.err].join('\n'))
    await same(s, { accepted: true, verdict: 'trusted', rule: 'book' })
  })

  it('text output: the decision lines read like the plugin log', async () => {
    const r = await ctl(['--config', haraka.dir, 'explain', '--ip', '2001:db8:7::20', '--helo', 'x.neutral.test', '--mail-from', 'someone@neutral.test', '--rcpt', 'bob@rcpt.test', '--spf', 'neutral'])
    assert.equal(r.code, 0)
    assert.ok(r.out.includes('rcpt <bob@rcpt.test> verdict=pending rule=none: no basis at rcpt (spf=neutral neutral.test); waiting for DATA'), r.out.join('\n'))
    assert.ok(r.out.includes('data_post verdict=defer rule=none: From someone@neutral.test not relaxed-aligned with a passing SPF/DKIM domain (spf=neutral neutral.test, dkim pass=none) [dmarc=none header.from=neutral.test]'), r.out.join('\n'))
    assert.ok(r.out.includes('DMARC:     dmarc=none header.from=neutral.test'), r.out.join('\n'))
    assert.ok(r.out.includes('result:    deferred after DATA with 451 4.7.26 "Not accepted over IPv6 from this host; please deliver via our IPv4 MX": the sender retries, at the IPv4 MX'), r.out.join('\n'))
    assert.ok(r.out.includes('  mx6ctl allow ip add 2001:db8:7::/64'))
  })
})
