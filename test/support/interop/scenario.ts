// The interop scenarios: one message from a sending MTA to a domain whose MX set is the
// suite's Haraka over IPv6 and a plain Postfix receiver over IPv4, and what happened to it,
// seen from both ends. (Not Haraka on IPv4 as well: Haraka 3.3.4 drops a connection that is
// half-closed after a pipelined QUIT before its queue hook answers, so Exim sees no 250 and
// sends the message again: an IPv4 problem of its own, see docs/interop.md.)
import fs from 'node:fs'
import path from 'node:path'
import { HarakaServer, type Captured } from '../haraka'
import { PostfixReceiver, type ReceivedMessage } from '../postfix-receiver'
import { poll, sleep } from '../proc'
import { MX6, RECEIVER_PLUGINS, V4MX, V6MX } from '../receiver'
import { RedisServer } from '../redis'
import type { InteropSender, Submission } from './types'

const TAP = path.resolve(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'haraka', 'interop-tap.js')

export type Undecided = 'defer' | 'wait'

export interface Scenario {
  id: string
  /** mx6-receive's [main] undecided: 4xx at RCPT, or after DATA. */
  undecided: Undecided
  domain: string
  title: string
  /** A sender that falls back properly delivers via the IPv4 MX; the MX6 case bounces. */
  expect: 'ipv4' | 'bounce'
}

export const SCENARIOS: Scenario[] = [
  { id: 'rcpt-pref', undecided: 'defer', domain: 'rcpt.test', title: '4xx at RCPT; MX 10 IPv6, MX 20 IPv4', expect: 'ipv4' },
  { id: 'data-pref', undecided: 'wait', domain: 'rcpt.test', title: '4xx after DATA; MX 10 IPv6, MX 20 IPv4', expect: 'ipv4' },
  { id: 'rcpt-equal', undecided: 'defer', domain: 'eq.test', title: '4xx at RCPT; IPv6 and IPv4 MX both at 10', expect: 'ipv4' },
  { id: 'data-equal', undecided: 'wait', domain: 'eq.test', title: '4xx after DATA; IPv6 and IPv4 MX both at 10', expect: 'ipv4' },
  { id: 'rcpt-dual', undecided: 'defer', domain: 'dual.test', title: '4xx at RCPT; one MX host with AAAA and A', expect: 'ipv4' },
  { id: 'data-dual', undecided: 'wait', domain: 'dual.test', title: '4xx after DATA; one MX host with AAAA and A', expect: 'ipv4' },
  { id: 'mx6-550', undecided: 'wait', domain: 'mx6only.test', title: '550 5.5.7 from an MX6 listener (the only MX)', expect: 'bounce' },
]

export interface Outcome {
  sender: string
  scenario: string
  delivered: boolean
  /** 'IPv4 MX', 'IPv6 MX', 'MX6 listener' or '' */
  via: string
  /** Sender-side deferrals before the end: 0 = the same delivery attempt. */
  retries: number
  /** Seconds from submission to delivery or bounce (a measurement, never asserted). */
  delay: number
  /** Completed DATA transfers seen by the receiver (deferred ones included). */
  bodyCrossings: number
  /** IPv6 transactions (MAIL..RCPT) the receiver saw for the message. */
  ipv6Tries: number
  dsn: boolean
  /** DSNs that only warn of a delay (the message is still queued). */
  delayWarnings: number
  /** Copies delivered (more than 1 = duplicates). */
  copies: number
  /** '' when the outcome was reached before the bound. */
  note: string
}

interface TapLine {
  ev: 'rcpt' | 'data' | 'deny'
  from: string
  local: string
  hook?: string
  rc?: number
}

/** The receiving Haraka for one value of undecided, with its private Redis. */
export class InteropReceiver {
  private constructor(
    readonly undecided: Undecided,
    readonly redis: RedisServer,
    readonly haraka: HarakaServer,
    readonly ipv4: PostfixReceiver,
  ) {}

  static async start(undecided: Undecided): Promise<InteropReceiver> {
    const redis = await RedisServer.start()
    const domains = ['rcpt.test', 'eq.test', 'dual.test', 'mx6only.test', 'dsn.test']
    let ipv4: PostfixReceiver | undefined
    try {
      ipv4 = await PostfixReceiver.start({ listen: [`${V4MX}:25`], domains, mx6Fallback: false })
      const haraka = await HarakaServer.start({
        listen: [`[${V6MX}]:25`, `[${MX6}]:25`],
        plugins: ['interop-tap', ...RECEIVER_PLUGINS],
        pluginFiles: { 'interop-tap': fs.readFileSync(TAP, 'utf8') },
        hostList: domains,
        config: { 'mx6-receive.ini': `[main]\nundecided=${undecided}\n[mx6]\nlisteners=${MX6}\n[redis]\nport=${redis.port}\ntimeout=300\n` },
      })
      return new InteropReceiver(undecided, redis, haraka, ipv4)
    } catch (err) {
      await ipv4?.stop()
      await redis.stop()
      throw err
    }
  }

  tap(from: string): TapLine[] {
    const f = path.join(this.haraka.dir, 'interop-tap.jsonl')
    if (!fs.existsSync(f)) return []
    return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as TapLine).filter((l) => l.from === from)
  }

  async stop(): Promise<void> {
    await this.haraka.stop()
    await this.ipv4.stop()
    await this.redis.stop()
  }
}

/** A delivered copy: where it arrived and with which envelope sender ('' for a DSN). */
interface Copy {
  via: string
  mailFrom: string
  rcptTo: string[]
  raw: string
}

function fromHaraka(c: Captured): Copy {
  return { via: c.meta.local_ip === MX6 ? 'MX6 listener' : 'IPv6 MX', mailFrom: c.meta.mail_from ?? '', rcptTo: c.meta.rcpt_to, raw: c.raw }
}

function fromPostfix(r: ReceivedMessage): Copy {
  return { via: 'IPv4 MX', mailFrom: r.mailFrom ?? '', rcptTo: [r.rcptTo ?? ''], raw: r.raw }
}

let seq = 0

/**
 * Sends one message and waits (at most `boundMs`, kicking the sender's queue every
 * `kickMs`) until it is delivered or bounced; then waits `settleMs` more for duplicates,
 * retries or a loop to show.
 */
export async function runScenario(sender: InteropSender, rx: InteropReceiver, sc: Scenario, opts: { boundMs?: number; kickMs?: number; settleMs?: number } = {}): Promise<Outcome> {
  const tag = `${sender.name.replace(/\W/g, '-')}.${sc.id}.${++seq}.${process.pid}`
  const m: Submission = { from: `${tag}@dsn.test`, to: `user@${sc.domain}`, messageId: `<${tag}@sender.other.test>`, subject: `interop ${sender.name} ${sc.id}` }
  const all = (): Copy[] => [...rx.haraka.captured().map(fromHaraka), ...rx.ipv4.received().map(fromPostfix)]
  const midLine = new RegExp(`^Message-ID: ${m.messageId.replace(/[.+]/g, '\\$&')}`, 'mi')
  const copies = (): Copy[] => all().filter((c) => c.mailFrom && midLine.test(c.raw))
  // The DSN comes back to the envelope sender's domain (dsn.test, IPv4 only) with a null
  // sender; a delay warning ("Action: delayed") is not a bounce.
  const notices = (): Copy[] => all().filter((c) => !c.mailFrom && c.rcptTo.includes(m.from))
  const dsns = (): Copy[] => notices().filter((c) => !/^Action: delayed/im.test(c.raw))
  const mark = rx.haraka.logSize()
  const t0 = Date.now()
  await sender.submit(m)
  const bound = opts.boundMs ?? 20000
  let lastKick = Date.now()
  let note = ''
  try {
    await poll(async () => {
      if (copies().length > 0 || dsns().length > 0) return true
      if (opts.kickMs && Date.now() - lastKick >= opts.kickMs) {
        lastKick = Date.now()
        await sender.kick()
      }
      return undefined
    }, bound, `${sender.name} ${sc.id}: delivery or bounce`, 100)
  } catch (err) {
    if (!/^timed out/.test((err as Error).message)) throw err
    note = `neither delivered nor bounced within ${bound / 1000} s`
    if (process.env.MX6_INTEROP_DEBUG) process.stderr.write(`${sender.name} log tail:\n${sender.log().slice(-4000)}\n`)
  }
  const delay = (Date.now() - t0) / 1000
  await sleep(opts.settleMs ?? 1500)
  const got = copies()
  if (process.env.MX6_INTEROP_DEBUG === 'dsn') for (const d of dsns()) process.stderr.write(`DSN:\n${d.raw}\n`)
  if (process.env.MX6_INTEROP_DEBUG === 'all') process.stderr.write(`${sender.name} ${sc.id} log tail:\n${sender.log().slice(-3000)}\nIPv6 receiver:\n${rx.haraka.logSince(mark)}\n`)
  const tap = rx.tap(m.from)
  const view = sender.view(m)
  return {
    sender: sender.name,
    scenario: sc.id,
    delivered: got.length > 0,
    via: got[0]?.via ?? '',
    retries: view.deferrals,
    delay: Math.round(delay * 10) / 10,
    // DATA completed at Haraka (IPv6, deferred or not) plus copies stored by the IPv4 MX.
    bodyCrossings: tap.filter((l) => l.ev === 'data').length + got.filter((c) => c.via === 'IPv4 MX').length,
    ipv6Tries: tap.filter((l) => l.ev === 'rcpt' && l.local.includes(':')).length,
    dsn: dsns().length > 0,
    copies: got.length,
    delayWarnings: notices().length - dsns().length,
    note: note || (view.bounced && dsns().length === 0 ? 'bounce logged by the sender, DSN not received' : ''),
  }
}
