// A real Postfix 3.7 as the *receiving* MTA, inside the test bed's namespace itself: a peer that
// is not our software, for interop tests of the MX6 sender. It listens on the given addresses
// (added to lo by scripts/testbed.sh), accepts any local part of `domains` and stores each
// accepted message in one maildir (virtual(8) delivery, base/mail/inbox/new/).
//
// MX6 fallback (on by default): IPv6 clients get 550 5.5.7 at end of DATA, IPv4 clients are
// accepted. It is a CIDR table in smtpd_end_of_data_restrictions, and a reject footer matched
// on that reply makes it a two-line reply.
//
// Coexists with PostfixSender (postfix.ts) and other receivers: each instance has its own base
// dir with config, queue (master.pid), data (master.lock) and maillog; see postfix-instance.ts.
import fs from 'node:fs'
import path from 'node:path'
import { parseHostPort, requireTestbed } from './net'
import { formatMainCf, killProcessGroup, instanceSettings, MASTER_CF_FIXTURE, postfixBaseDir, PostfixInstance, systemIds } from './postfix-instance'
import { poll, runOk } from './proc'

export const RECEIVER_HOSTNAME = 'pfmx6.rcpt.test'
/**
 * The MX6 fallback reply, two lines: smtpd puts its usual prefix before the table's text,
 *   550-5.5.7 <unknown[2001:db8:7::77]>: Client host rejected: MX6 fallback: deliver over IPv4
 *   550 5.5.7 Not accepted over IPv6 from this host; please retry over IPv4 (test bed Postfix)
 */
export const MX6_REPLY = { code: 550, status: '5.5.7', text: 'MX6 fallback: deliver over IPv4' }
export const MX6_FOOTER = 'Not accepted over IPv6 from this host; please retry over IPv4 (test bed Postfix)'

export interface ReceiverOptions {
  /** e.g. ['[2001:db8:25::7]:25', '198.51.100.27:25'] */
  listen: string[]
  /** Accepted recipient domains (any local part). */
  domains: string[]
  /** 550 5.5.7 after DATA for IPv6 clients; IPv4 clients are accepted. @default true */
  mx6Fallback?: boolean
  /** Overrides or adds main.cf settings. */
  mainCf?: Record<string, string>
}

export interface ReceivedMessage {
  /** The message as stored (LF line ends), with Return-Path:, Delivered-To: and Received: on top. */
  raw: string
  /** The SMTP client's address, from the Received: header Postfix put on top ('[IPv6:...]' unwrapped). */
  clientAddress?: string
  /** Postfix's queue ID, from that Received: header; its maillog lines carry it. */
  queueId?: string
  /** Envelope sender and recipient (Return-Path:, Delivered-To:). */
  mailFrom?: string
  rcptTo?: string
  file: string
}

const WILDCARDS = ['::', '0.0.0.0']

interface Listener {
  host: string
  port: number
  /** The master.cf service name: '[v6]:port' or 'v4:port'. */
  service: string
}

function listener(listen: string): Listener {
  const { host, port } = parseHostPort(listen)
  return { host, port, service: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` }
}

/**
 * The listen addresses something already listens on. Postfix binds with SO_REUSEPORT: a second
 * instance on the same address starts without complaint and the kernel then spreads the
 * connections over both, so this has to be checked before the start.
 */
async function busy(wanted: Listener[]): Promise<Listener[]> {
  const wild = (h: string): boolean => WILDCARDS.includes(h) || h === '*'
  const socks = (await runOk('ss', ['-Hltn']))
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3])
    .filter((a): a is string => Boolean(a))
    .map((a) => {
      const i = a.lastIndexOf(':')
      return { host: a.slice(0, i).replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase(), port: Number(a.slice(i + 1)) }
    })
  return wanted.filter((l) => socks.some((s) => s.port === l.port && (s.host === l.host.toLowerCase() || wild(s.host) || wild(l.host))))
}

/** The first occurrence of a header (unfolded), or undefined. */
function header(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/, 1)[0]
  const m = new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head)
  return m ? m[1].replace(/\r?\n[ \t]+/g, ' ').trim() : undefined
}

/** Parses one maildir file. The topmost Received: is Postfix's own (virtual(8) adds only
 * Return-Path: and Delivered-To: above it), so a client-supplied Received: cannot fool it. */
export function parseStored(file: string, raw: string): ReceivedMessage {
  const msg: ReceivedMessage = { raw, file }
  const received = header(raw, 'Received')
  if (received) {
    // "from helo (name [192.0.2.77]) by pfmx6.rcpt.test (Postfix) with ESMTP id 4Xk...".
    const client = /^from \S+ \([^)]*\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]\)/.exec(received)
    if (client) msg.clientAddress = client[1]
    const id = / by \S+ \(Postfix\) with \S+ id ([0-9A-Za-z]+)/.exec(received)
    if (id) msg.queueId = id[1]
  }
  msg.mailFrom = header(raw, 'Return-Path')?.replace(/^<|>$/g, '')
  msg.rcptTo = header(raw, 'Delivered-To')
  return msg
}

export class PostfixReceiver {
  private readonly instance: PostfixInstance
  private stopped = false

  private constructor(
    /** Holds etc/, spool/, data/, mail/ and maillog. */
    readonly base: string,
    readonly listen: string[],
  ) {
    this.instance = new PostfixInstance(base)
  }

  get configDir(): string {
    return this.instance.configDir
  }

  get logFile(): string {
    return this.instance.logFile
  }

  get masterPid(): number {
    return this.instance.masterPid
  }

  /** The maildir the messages are delivered to. */
  get maildir(): string {
    return path.join(this.base, 'mail', 'inbox')
  }

  static async start(opts: ReceiverOptions): Promise<PostfixReceiver> {
    requireTestbed()
    if (opts.listen.length === 0) throw new Error('PostfixReceiver: no listen address')
    if (opts.domains.length === 0) throw new Error('PostfixReceiver: no domains')
    const listeners = opts.listen.map(listener)
    const taken = await busy(listeners)
    if (taken.length > 0) throw new Error(`PostfixReceiver: already listening on ${taken.map((l) => l.service).join(', ')}`)
    const base = postfixBaseDir('postfix-rcpt')
    const receiver = new PostfixReceiver(base, opts.listen)
    try {
      await receiver.postfix(listeners, opts)
    } catch (err) {
      await receiver.stop()
      throw err
    }
    return receiver
  }

  private async postfix(listeners: Listener[], opts: ReceiverOptions): Promise<void> {
    const ids = systemIds()
    const uid = ids.uid('postfix')
    const gid = ids.gid('postfix')
    if (uid === undefined || gid === undefined) throw new Error('PostfixReceiver: no user/group postfix')
    // virtual(8) delivers as virtual_uid_maps: the mailbox base must be writable for it.
    const mailBase = path.join(this.base, 'mail')
    fs.mkdirSync(mailBase, { mode: 0o700 })
    fs.chownSync(mailBase, uid, gid)

    const etc = this.configDir
    const fallback = opts.mx6Fallback ?? true
    const files: Record<string, string> = {}
    const settings: Record<string, string> = {
      ...instanceSettings(this.base),
      // Its maillog lines say "postfix-rcpt/smtpd[...]", PostfixSender's "postfix/...".
      syslog_name: 'postfix-rcpt',
      myhostname: RECEIVER_HOSTNAME,
      mydomain: 'rcpt.test',
      myorigin: '$myhostname',
      smtpd_banner: '$myhostname ESMTP Postfix (test bed receiver)',
      // Postfix refuses "::" and "0.0.0.0" here ("no local interface found"): a wildcard
      // listener needs "all" (the master.cf service names still say which sockets to bind).
      inet_interfaces: listeners.some((l) => WILDCARDS.includes(l.host)) ? 'all' : listeners.map((l) => l.host).join(', '),
      inet_protocols: 'all',
      mynetworks: '127.0.0.0/8, [::1]/128',
      // Nothing is local: every domain of ours is a virtual mailbox domain, the rest is refused.
      mydestination: '',
      relay_domains: '',
      smtpd_relay_restrictions: 'reject_unauth_destination',
      smtpd_helo_required: 'no',
      smtpd_tls_security_level: 'none',
      virtual_mailbox_domains: opts.domains.join(', '),
      virtual_mailbox_base: mailBase,
      // Every recipient of those domains maps to the one maildir (trailing slash: maildir).
      virtual_mailbox_maps: 'static:inbox/',
      virtual_uid_maps: `static:${uid}`,
      virtual_gid_maps: `static:${gid}`,
      virtual_minimum_uid: '1',
      virtual_mailbox_limit: '0',
      // It never sends: not to the outside (there is no route anyway), not even bounces.
      default_transport: 'error:outbound mail disabled in the test bed receiver',
      relay_transport: 'error:outbound mail disabled in the test bed receiver',
      local_transport: 'error:local delivery disabled in the test bed receiver',
      alias_maps: '',
      alias_database: '',
      biff: 'no',
      smtp_tls_security_level: 'none',
    }
    if (fallback) {
      // Postfix compares IPv4 clients only with IPv4 entries, so ::/0 is every IPv6 client and
      // no IPv4 one. smtpd unmaps ::ffff:a.b.c.d clients to a.b.c.d (and binds IPv6 listeners
      // V6ONLY); the DUNNO line keeps a mapped address from ever counting as IPv6 anyway.
      const { code, status, text } = MX6_REPLY
      files['mx6.cidr'] = `::ffff:0.0.0.0/96 DUNNO\n::/0 ${code} ${status} ${text}\n`
      settings.smtpd_end_of_data_restrictions = `check_client_access cidr:${path.join(etc, 'mx6.cidr')}`
      // Looked up with the complete reply; the footer becomes a new line repeating "550 5.5.7".
      const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
      files['mx6-footer.regexp'] = `/^${code} ${re(status)} .*: ${re(text)}$/ ${MX6_FOOTER}\n`
      settings.smtpd_reject_footer_maps = `regexp:${path.join(etc, 'mx6-footer.regexp')}`
    }
    Object.assign(settings, opts.mainCf)

    // The fixture's service list, with "smtp inet" replaced by one smtpd per listen address
    // and the virtual delivery agent added.
    const services = fs.readFileSync(MASTER_CF_FIXTURE, 'utf8').split('\n').filter((l) => !/^smtp\s+inet\s/.test(l))
    const masterCf = [
      ...services.filter((l) => l !== ''),
      ...listeners.map((l) => `${l.service} inet n - n - - smtpd`),
      'virtual   unix  -       n       n       -       -       virtual',
      '',
    ].join('\n')
    try {
      await this.instance.start(formatMainCf(settings), masterCf, (cmd, args) => runOk(cmd, args), files)
    } catch (err) {
      // Without a tty Postfix explains nothing on stderr: its maillog says why.
      throw new Error(`PostfixReceiver: ${err instanceof Error ? err.message : String(err)}\nmaillog:\n${this.log()}`)
    }
  }

  /** Every accepted message, in delivery order. */
  received(): ReceivedMessage[] {
    const dir = path.join(this.maildir, 'new')
    if (!fs.existsSync(dir)) return []
    // Maildir names are "<seconds>.V<dev>I<inode>M<microseconds>.<host>".
    const key = (f: string): [number, number] => {
      const m = /^(\d+)\.[^.]*M(\d+)\./.exec(f)
      return m ? [Number(m[1]), Number(m[2])] : [Infinity, 0]
    }
    return fs
      .readdirSync(dir)
      .sort((a, b) => key(a)[0] - key(b)[0] || key(a)[1] - key(b)[1] || a.localeCompare(b))
      .map((f) => parseStored(f, fs.readFileSync(path.join(dir, f), 'utf8')))
  }

  /** Waits until at least `count` messages are stored; returns them all. */
  waitForReceived(count: number, timeoutMs = 10000): Promise<ReceivedMessage[]> {
    return poll(() => {
      const r = this.received()
      return r.length >= count ? r : undefined
    }, timeoutMs, `${count} message(s) in ${this.maildir}`)
  }

  /** The client address smtpd logged for a queue ID ("<id>: client=name[addr]"). */
  clientFromLog(queueId: string): string | undefined {
    const m = new RegExp(` ${queueId}: client=[^\\[\\s]*\\[([^\\]]+)\\]`).exec(this.log())
    return m?.[1]
  }

  log(): string {
    return this.instance.log()
  }

  /** Stops Postfix (every process of the master's process group) and removes its files. Safe to repeat. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    const pgid = this.instance.masterPid
    try {
      await this.instance.stopMaster()
      if (pgid > 0) await killProcessGroup(pgid)
    } finally {
      fs.rmSync(this.base, { recursive: true, force: true })
    }
  }
}
