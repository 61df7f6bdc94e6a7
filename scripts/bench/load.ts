// Load generators for the benchmark: Postfix's smtp-source, and a small one of
// ours for paths smtp-source cannot drive (it gives up on a 4xx after DATA, and
// it cannot send pre-signed DKIM messages or bind public-looking peer addresses).
import { run } from '../../test/support/proc'
import { smtpSession } from '../../test/support/smtp'

export interface LoadResult {
  messages: number
  seconds: number
  perSecond: number
  /** Final reply codes seen (250, 451, ...) and how often. */
  codes: Record<string, number>
}

export async function smtpSource(opts: { v6: boolean; host: string; port: number; sessions: number; messages: number }): Promise<LoadResult> {
  const args = [opts.v6 ? '-6' : '-4', '-s', String(opts.sessions), '-m', String(opts.messages), '-l', '1000', '-f', 'bench@neutral.test', '-t', 'bob@rcpt.test', '-M', 'bench.neutral.test']
  const target = opts.v6 ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`
  const t0 = process.hrtime.bigint()
  const r = await run('smtp-source', [...args, target], { timeoutMs: 600000 })
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.code !== 0) throw new Error(`smtp-source failed (${r.code}): ${r.stderr.slice(0, 500)}`)
  return { messages: opts.messages, seconds, perSecond: opts.messages / seconds, codes: { '250': opts.messages } }
}

/**
 * `sessions` workers, each sending its share of `messages` one SMTP session per
 * message from its own peer address (peers(i) gives worker i's address).
 */
export async function ourLoad(opts: { host: string; port: number; sessions: number; messages: number; peer: (worker: number) => string; mailFrom: string; data: string | Buffer }): Promise<LoadResult> {
  const codes: Record<string, number> = {}
  let left = opts.messages
  const t0 = process.hrtime.bigint()
  const worker = async (w: number): Promise<void> => {
    while (left > 0) {
      left--
      const r = await smtpSession({ host: opts.host, port: opts.port, localAddress: opts.peer(w), ehlo: 'bench.neutral.test', mailFrom: opts.mailFrom, rcptTo: ['bob@rcpt.test'], data: opts.data, timeoutMs: 60000 })
      const code = String(r.dataEnd?.code ?? r.rcpt[0]?.code ?? r.mail.code)
      codes[code] = (codes[code] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: opts.sessions }, (_, i) => worker(i)))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return { messages: opts.messages, seconds, perSecond: opts.messages / seconds, codes }
}
