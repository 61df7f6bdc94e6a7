// mx6ctl explain: what mx6-receive decides for a peer and a message, and what would change it.
import fs from 'node:fs'
import path from 'node:path'
import { Address } from '@haraka/email-address'
import { systemServers } from '../../plugins/lib/dns'
import { canonicalDomain } from '../../plugins/lib/domain'
import type { HarakaAddress } from '../../plugins/lib/haraka'
import { classifyPeer } from '../../plugins/lib/ip'
import { RedisListStore } from '../../plugins/lib/store'
import { printable } from '../../plugins/lib/text'
import type { Decision } from '../../plugins/mx6-receive/decide'
import type { FromFact } from '../../plugins/mx6-receive/decide-data'
import { authText, decisionLine } from '../../plugins/mx6-receive/record'
import { peerResolver } from '../../plugins/mx6-receive/config'
import { parseFrom } from '../../plugins/mx6-receive/facts'
import { gatherPeerSignals, matchHelo } from '../../plugins/mx6-receive/peer-signals'
import { queryZones, zoneText } from '../../plugins/mx6-receive/reputation'
import { domainZones, signalsConfig } from '../../plugins/mx6-receive/signals'
import { parse, UsageError, type Command } from './command'
import { loadReceiveConfig, openContext } from './context'
import { explain, harakaIsPrivate, SPF_RESULTS, type ExplainDeps, type ExplainFacts, type Explanation } from './explain-core'

const HELP = `Usage: mx6ctl explain --ip <addr> [--helo <name>] [--mail-from <addr>]
                      [--rcpt <addr>]... [--from <addr>] [--dkim-pass <d1,d2>]
                      [--dkim-fail <d1,d2>] [--spf <result>]
                      [--listener <addr>|[<addr>]:<port>] [--message <file>]
                      [--json]

Runs mx6-receive's own decision core against the live lists in Redis (the
settings of the instance given with --config) for the facts you give, and
prints each recipient's RCPT decision, the decision after DATA, what the
sender gets, and what would change it (the mx6ctl commands that would create
a basis, each checked by deciding again with it).

  --ip          the peer's address (IPv4 and private IPv6 peers are not acted on)
  --helo        the HELO/EHLO name (for forward-confirmed reverse DNS)
  --mail-from   the envelope sender; "" or "<>" for the null sender
  --rcpt        a recipient (repeat for several); none: book rules are not shown
  --from        the From header (an address or "Name <addr>"); default: --mail-from;
                "" for a message without From
  --dkim-pass   domains (d=) of the DKIM signatures that verified, comma-separated
  --dkim-fail   domains (d=) of the DKIM signatures that failed, comma-separated
                (a failing signature of the From domain is failed authentication)
  --spf         haraka-plugin-spf's result for MAIL FROM: pass, fail, softfail,
                neutral, none (default: explain cannot evaluate SPF without the
                peer's session), temperror, permerror. With "none" the
                last-resort SPF record is evaluated, as the plugin does.
  --listener    the local address the peer connected to: an MX6 session when it
                is one of [mx6] listeners (port 25 unless given)
  --message     the message as received (a file with its header): its ARC chain
                is validated as the plugin does it, when nothing else
                authenticates the From domain. DMARC is always evaluated, from
                --spf, --dkim-pass and the From domain's record in DNS.
  --json        the whole explanation as one JSON object: {"peer": {"given",
                "canonical", "family", "private"}, "helo", "mx6", "listener",
                "mailFrom", "spf", "spfAssumed", "guess", "from",
                "alignedDomains", "dkimPass", "dkimFail", "authFailure", "dmarc",
                "arc", "domainZones", "mode",
                "peerSignals" (its "providers" the IPv6 zones' answers), "skip", "rcpts": [{"given", "mailbox",
                "decision"}], "data", "final", "phase", "result": "<one line>",
                "changes": [{"verdict", "commands": [...], "effect"}],
                "notes": [...], "storeErrors": [...]}; a decision is
                {"verdict", "rule", "final", "reason", "entry"?, "override"?}

Exit status: 0 explained, 1 Redis trouble, 2 invalid input or usage (one
line on stderr). Nothing is written.
`

type GuessModule = typeof import('../../plugins/mx6-receive/spf-guess')
let guessModule: Promise<GuessModule> | null = null

/**
 * The plugin's last-resort SPF evaluation, loaded only when needed: its SPF
 * engine (haraka-plugin-spf) pulls in haraka-tld, which prints "loaded TLD
 * files ..." to stdout while it loads; that must not end up in our output.
 */
function spfGuessModule(): Promise<GuessModule> {
  guessModule ??= (async () => {
    const saved = process.env.HARAKA_LOGS_SUPPRESS
    process.env.HARAKA_LOGS_SUPPRESS = '1'
    try {
      const m = await import('../../plugins/mx6-receive/spf-guess')
      // The SPF engine traces every step with console.error unless the host replaces
      // log_debug, as haraka-plugin-spf does in Haraka (SPF.prototype.log_debug = ...).
      const { SPF } = await import('haraka-plugin-spf/lib/spf')
      ;(SPF.prototype as unknown as { log_debug(s: string): void }).log_debug = () => undefined
      try {
        const netUtils = require.resolve('haraka-net-utils', { paths: [path.dirname(require.resolve('haraka-plugin-spf/lib/spf'))] })
        const tld = require(require.resolve('haraka-tld', { paths: [path.dirname(netUtils)] })) as { ready?: Promise<unknown> }
        await tld.ready?.catch(() => undefined)
      } catch {
        // another layout of node_modules: at worst the line is printed
      }
      return m
    } finally {
      if (saved === undefined) delete process.env.HARAKA_LOGS_SUPPRESS
      else process.env.HARAKA_LOGS_SUPPRESS = saved
    }
  })()
  return guessModule
}

function arg(s: string): string {
  return printable(s, 80)
}

/** MAIL FROM / RCPT TO text as Haraka's parser reads it; "" and "<>" are the null sender. */
export function envelopeAddress(opt: string, text: string, allowNull: boolean): HarakaAddress | null {
  const t = text.trim()
  if (t.length > 1000 || /[\x00-\x1f\x7f]/.test(t)) throw new UsageError(`${opt} "${arg(t)}": not an address`)
  let a: Address
  try {
    a = new Address(t.startsWith('<') ? t : `<${t}>`)
  } catch (err) {
    throw new UsageError(`${opt} "${arg(t)}": ${(err as Error).message}`)
  }
  if (!a.user || !a.host) {
    if (allowNull && (t === '' || t === '<>')) return null
    throw new UsageError(`${opt} "${arg(t)}": ${allowNull ? 'not an address (use "" or "<>" for the null sender)' : 'not a recipient address'}`)
  }
  return { user: a.user, host: a.host, original: a.original }
}

/** The From header as the plugin's fromFact() reads it ("" for a message without From). */
export function fromArg(text: string): FromFact {
  return text.trim() === '' ? { problem: 'no From header' } : parseFrom(text)
}

function listenerArg(text: string): { ip: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text.trim())
  const addr = classifyPeer(m ? m[1] : text.trim())
  const port = m ? Number(m[2]) : 25
  if (!addr || text.includes('/') || port < 1 || port > 65535) throw new UsageError(`--listener "${arg(text)}": expected an address or [address]:port`)
  return { ip: addr.canonical, port }
}

/** The message file given with --message; at most 50 MB, as a large Haraka databytes. */
function messageArg(file: string): Buffer {
  let size: number
  try {
    size = fs.statSync(file).size
  } catch (err) {
    throw new UsageError(`--message "${arg(file)}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (size > 50 * 1024 * 1024) throw new UsageError(`--message "${arg(file)}": larger than 50 MB`)
  try {
    return fs.readFileSync(file)
  } catch (err) {
    throw new UsageError(`--message "${arg(file)}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

/** A comma-separated list of domains, canonical, each once. */
function domainsArg(opt: string, text: string | undefined): string[] {
  const out: string[] = []
  for (const d of (text ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const c = canonicalDomain(d)
    if (!c) throw new UsageError(`${opt} "${arg(d)}": not a domain`)
    if (!out.includes(c)) out.push(c)
  }
  return out
}

export function parseFacts(argv: string[], now = Math.floor(Date.now() / 1000)): { facts: ExplainFacts; json: boolean } {
  const { values, positionals } = parse(argv, {
    ip: { type: 'string' },
    helo: { type: 'string' },
    'mail-from': { type: 'string' },
    rcpt: { type: 'string', multiple: true },
    from: { type: 'string' },
    'dkim-pass': { type: 'string' },
    'dkim-fail': { type: 'string' },
    spf: { type: 'string' },
    listener: { type: 'string' },
    message: { type: 'string' },
    json: { type: 'boolean' },
  })
  if (positionals.length) throw new UsageError(`unexpected argument "${arg(positionals[0])}"`)
  if (values.ip === undefined) throw new UsageError('--ip is required')
  if (!classifyPeer(values.ip) || values.ip.includes('/')) throw new UsageError(`--ip "${arg(values.ip)}": not an IP address`)
  const helo = values.helo ?? ''
  if (helo.length > 255 || !/^[\x21-\x7e]*$/.test(helo)) throw new UsageError(`--helo "${arg(helo)}": expected a host name or address literal`)
  const mailFrom = values['mail-from'] === undefined ? null : envelopeAddress('--mail-from', values['mail-from'], true)
  const rcpts = (values.rcpt ?? []).map((r) => envelopeAddress('--rcpt', r, false)!)
  if (rcpts.length > 100) throw new UsageError('at most 100 --rcpt')
  const fromText = values.from ?? (mailFrom ? `${mailFrom.user}@${mailFrom.host}` : '')
  if (fromText.length > 2000) throw new UsageError('--from: too long')
  const dkimPass = domainsArg('--dkim-pass', values['dkim-pass'])
  const dkimFail = domainsArg('--dkim-fail', values['dkim-fail'])
  const spf = (values.spf ?? 'none').toLowerCase()
  if (!(SPF_RESULTS as readonly string[]).includes(spf)) throw new UsageError(`--spf "${arg(values.spf ?? '')}": one of ${SPF_RESULTS.join(', ')}`)
  return {
    facts: {
      ip: values.ip.trim(),
      helo,
      mailFrom,
      rcpts,
      from: fromArg(fromText),
      dkimPass,
      dkimFail,
      spf: { result: spf, given: values.spf !== undefined },
      listener: values.listener === undefined ? null : listenerArg(values.listener),
      message: values.message === undefined ? null : messageArg(values.message),
      now,
    },
    json: !!values.json,
  }
}

/** The plugin's own log line for this decision (without its timing). */
function line(phase: string, subject: string, d: Decision, auth?: string): string {
  return decisionLine(phase, d, undefined, subject, undefined, auth)
}

export function render(e: Explanation): string[] {
  const out: string[] = []
  const kind = e.peer.family === 'ipv4' ? 'IPv4' : e.peer.private ? 'private IPv6' : 'IPv6'
  out.push(`peer:      ${e.peer.canonical ?? printable(e.peer.given)} (${kind})${e.helo ? `, HELO ${printable(e.helo, 100)}` : ', no HELO given'}`)
  if (e.skip) {
    out.push(line('rcpt', '', e.skip))
  } else {
    out.push(`session:   ${e.mx6 ? `MX6 listener ${e.listener}` : e.listener ? `regular listener ${e.listener}` : 'regular (no --listener)'}`)
    out.push(`MAIL FROM: ${e.mailFrom ?? '<> (null sender)'}`)
    const spf = e.spf
    out.push(`SPF:       ${spf ? `${spf.result} for ${printable(spf.domain)}${spf.guess ? ' (last-resort guess)' : ''}${e.spfAssumed && !spf.guess ? ' (assumed: give --spf)' : ''}` : 'no MAIL FROM result'}`)
    if (e.guess) out.push(`           last-resort SPF for ${e.guess.domain} (${e.guess.source} record "${printable(e.guess.record)}"): ${e.guess.result}`)
    out.push(`From:      ${printable(e.from)}`)
    out.push(`DKIM pass: ${e.dkimPass.join(', ') || 'none'}`)
    if (e.dkimFail.length) out.push(`DKIM fail: ${e.dkimFail.join(', ')}`)
    if (e.dmarc) out.push(`DMARC:     ${e.dmarc.authResults}${e.dmarc.aligned ? ` (aligned: ${e.dmarc.aligned})` : ''}`)
    if (e.arc) out.push(`ARC:       ${e.arc.reason}`)
    if (e.authFailure) out.push(`auth:      failed (${e.authFailure}): no automatic signal counts; only an operator's list entry can accept`)
    out.push(`aligned:   ${e.alignedDomains.join(', ') || 'none (the From domain is not authenticated)'}`)
    if (e.peerSignals) out.push(`signals:   fcrdns ${e.peerSignals.fcrdns.outcome} (${e.peerSignals.fcrdns.detail}); asn ${e.peerSignals.asn.outcome} (${e.peerSignals.asn.detail})`)
    for (const z of [...(e.peerSignals?.providers ?? []), ...e.domainZones]) out.push(`provider:  ${printable(z.subject, 100)}: ${zoneText(z)}`)
    for (const r of e.rcpts) out.push(line('rcpt', r.given ? ` <${r.mailbox?.address ?? '?'}>` : ' (any recipient)', r.decision))
    if (e.data) out.push(line('data_post', '', e.data, authText(e)))
    for (const err of e.storeErrors) out.push(`error:     ${err}`)
  }
  out.push(`result:    ${e.result}`)
  if (e.changes.length || e.notes.length) out.push('what would change it:')
  for (const c of e.changes) {
    for (const cmd of c.commands) out.push(`  ${cmd}`)
    out.push(`      -> ${c.effect}`)
  }
  for (const n of e.notes) out.push(`  - ${n}`)
  // Addresses may carry UTF-8 local parts (SMTPUTF8): the output stays printable ASCII.
  return out.map((l) => l.replace(/[^\x20-\x7e]/g, '?'))
}

export const explainCommand: Command = {
  summary: "explain mx6-receive's decision for a peer and a message, and what would change it",
  help: HELP,
  async run(argv, io, global) {
    const { facts, json } = parseFacts(argv)
    const cfg = loadReceiveConfig(global, io)
    const peer = classifyPeer(facts.ip)!
    // IPv4 peers are decided without Redis or DNS, as in the plugin.
    const needsStore = peer.family === 'ipv6' && !(cfg.policy.skipPrivate && harakaIsPrivate(facts.ip))
    const ctx = needsStore ? await openContext(global, { out: io.out, err: () => undefined }) : null
    try {
      const servers = cfg.signals.dnsServers.length ? cfg.signals.dnsServers : systemServers()
      const deps: ExplainDeps = {
        cfg,
        store: ctx
          ? new RedisListStore(ctx.redis, ctx.keys, { timeoutMs: cfg.redis.timeoutMs, statsDays: cfg.statsDays })
          : { lookup: async () => ({}), spfGuess: async () => null },
        peerSignals: async (ipv6, helo) => {
          const g = cfg.policy.green
          // As the plugin does it: its resolver settings (load_config), the DNS part
          // (startPeerSignals), then the HELO comparison (peerSignals).
          if (servers.length === 0) {
            const none = { outcome: 'err' as const, detail: 'no name servers configured' }
            return { fcrdns: { ...none, confirmed: [] }, asn: g.asn ? { ...none, asns: [] } : { outcome: 'skip', asns: [], detail: 'asn disabled' } }
          }
          const resolver = peerResolver(cfg)
          const dnsPart = await gatherPeerSignals(ipv6, resolver, signalsConfig(cfg))
          return { ...dnsPart, fcrdns: matchHelo(dnsPart.fcrdns, helo || undefined, cfg.signals.heloMatch) }
        },
        evaluateGuess: async (...a) => (await spfGuessModule()).evaluateGuess(...a),
        evaluateDmarc: async (input) => (await import('../../plugins/mx6-receive/dmarc')).evaluateDmarc(input, peerResolver(cfg), cfg.signals.dnsTimeoutMs),
        domainZones: domainZones(cfg).length ? (domains) => Promise.all(domains.map((d) => queryZones(domainZones(cfg), d, peerResolver(cfg)))).then((r) => r.flat()) : undefined,
        evaluateArc: async (message, fromDomain) => (await import('../../plugins/mx6-receive/arc')).evaluateArc(message, fromDomain, peerResolver(cfg), cfg.signals.dnsTimeoutMs),
        isPrivate: harakaIsPrivate,
      }
      const e = await explain(facts, deps)
      if (json) io.out(JSON.stringify(e, null, 2))
      else for (const l of render(e)) io.out(l)
      return e.storeErrors.length ? 1 : 0
    } finally {
      await ctx?.close()
    }
  },
}
