// SMTP clients for e2e tests: a raw session over net.Socket (exact multi-line replies, any
// source address), DKIM-signed messages built by nodemailer, and swaks.
import fs from 'node:fs'
import net from 'node:net'
import nodemailer from 'nodemailer'
import { run, RunResult } from './proc'

export interface Reply {
  /** 0 when the server closed the connection instead of replying. */
  code: number
  /** The raw reply lines, e.g. ['451-4.7.26 first', '451 4.7.26 second']. */
  lines: string[]
  /** The lines without code and separator, joined by '\n'. */
  text: string
}

export interface SessionResult {
  banner: Reply
  ehlo: Reply
  mail: Reply
  rcpt: Reply[]
  /** The reply to DATA (354), sent only if some RCPT got 2xx. */
  data?: Reply
  /** The reply after the final dot. */
  dataEnd?: Reply
  transcript: string
}

export interface SessionOptions {
  host: string
  port: number
  /** Source address, e.g. '2001:db8:7::10' (any address of the test bed's peer nets). */
  localAddress?: string
  ehlo: string
  mailFrom: string
  rcptTo: string[]
  data?: string | Buffer
  timeoutMs?: number
}

const CLOSED: Reply = { code: 0, lines: [], text: 'connection closed' }

/** Collects server lines into complete (possibly multi-line) replies. */
class ReplyReader {
  private buf = ''
  private lines: string[] = []
  private ready: Reply[] = []
  private waiting?: (r: Reply) => void
  closed = false

  constructor(sock: net.Socket, private log: (l: string) => void) {
    sock.on('data', (d: Buffer) => this.feed(d.toString('latin1')))
    sock.on('close', () => {
      this.closed = true
      this.push(CLOSED)
    })
  }

  private feed(chunk: string): void {
    this.buf += chunk
    let i: number
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '')
      this.buf = this.buf.slice(i + 1)
      this.log(`S: ${line}`)
      this.lines.push(line)
      // The last line of a reply has a space (or nothing) after the code, others a '-'.
      if (!/^\d{3}-/.test(line)) {
        const lines = this.lines
        this.lines = []
        this.push({ code: Number(line.slice(0, 3)) || 0, lines, text: lines.map((l) => l.slice(4)).join('\n') })
      }
    }
  }

  private push(r: Reply): void {
    const w = this.waiting
    this.waiting = undefined
    if (w) w(r)
    else this.ready.push(r)
  }

  next(): Promise<Reply> {
    const r = this.ready.shift()
    if (r) return Promise.resolve(r)
    if (this.closed) return Promise.resolve(CLOSED)
    return new Promise((resolve) => (this.waiting = resolve))
  }
}

/** CRLF line endings, dot-stuffing and the terminating dot (bytes kept as latin1). */
function encodeData(data: string | Buffer): Buffer {
  let s = typeof data === 'string' ? Buffer.from(data).toString('latin1') : data.toString('latin1')
  s = s.replace(/\r?\n/g, '\r\n')
  if (!s.endsWith('\r\n')) s += '\r\n'
  s = s.replace(/^\./gm, '..')
  return Buffer.from(`${s}.\r\n`, 'latin1')
}

/** One SMTP transaction, step by step; QUITs at the end; rejects only on timeout/connect errors. */
export function smtpSession(o: SessionOptions): Promise<SessionResult> {
  const transcript: string[] = []
  const log = (l: string): void => void transcript.push(l)
  const sock = net.connect({ host: o.host, port: o.port, localAddress: o.localAddress })
  const reader = new ReplyReader(sock, log)
  const send = (line: string): Promise<Reply> => {
    log(`C: ${line}`)
    if (!reader.closed) sock.write(`${line}\r\n`)
    return reader.next()
  }

  const session = async (): Promise<SessionResult> => {
    const banner = await reader.next()
    const ehlo = await send(`EHLO ${o.ehlo}`)
    const mail = await send(`MAIL FROM:<${o.mailFrom}>`)
    const rcpt: Reply[] = []
    for (const r of o.rcptTo) rcpt.push(await send(`RCPT TO:<${r}>`))
    const result: SessionResult = { banner, ehlo, mail, rcpt, transcript: '' }
    if (o.data !== undefined && rcpt.some((r) => r.code >= 200 && r.code < 300)) {
      result.data = await send('DATA')
      if (result.data.code === 354) {
        const body = encodeData(o.data)
        log(`C: [message, ${body.length} bytes, and the final dot]`)
        if (!reader.closed) sock.write(body)
        result.dataEnd = await reader.next()
      }
    }
    if (!reader.closed) await send('QUIT')
    result.transcript = transcript.join('\n')
    return result
  }

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`SMTP session timed out after ${o.timeoutMs ?? 15000} ms:\n${transcript.join('\n')}`))
    }, o.timeoutMs ?? 15000)
    sock.on('error', (err) => {
      // Errors after the server closed (e.g. EPIPE) are answered by CLOSED replies instead.
      if (transcript.length > 0) return
      clearTimeout(timer)
      reject(new Error(`SMTP connect to ${o.host}:${o.port} failed: ${err.message}`))
    })
    session().then(
      (r) => {
        clearTimeout(timer)
        sock.end()
        resolve(r)
      },
      (err: unknown) => {
        clearTimeout(timer)
        sock.destroy()
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}

export interface SignOptions {
  domain: string
  selector: string
  keyFile: string
  from: string
  to: string | string[]
  subject: string
  body: string
  headers?: Record<string, string>
}

/** A complete RFC 5322 message (CRLF) signed by nodemailer's DKIM signer. */
export async function dkimSign(o: SignOptions): Promise<Buffer> {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' })
  const info = await transport.sendMail({
    from: o.from,
    to: o.to,
    subject: o.subject,
    text: o.body,
    headers: o.headers,
    dkim: { domainName: o.domain, keySelector: o.selector, privateKey: fs.readFileSync(o.keyFile, 'utf8') },
  })
  return info.message as Buffer
}

/** Runs swaks (exit 24 = RCPT failed, 26 = DATA failed); never throws on a non-zero exit. */
export function swaks(args: string[], timeoutMs = 30000): Promise<RunResult> {
  return run('swaks', args, { timeoutMs })
}
