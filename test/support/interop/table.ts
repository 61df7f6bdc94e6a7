// The interop matrix as Markdown: a summary (one row per sender, one cell per scenario, short
// enough for README) and the detailed table (one row per outcome, docs/interop.md).
import type { MatrixResult } from './matrix'
import type { Outcome } from './scenario'

const line = (cells: string[]): string => `| ${cells.join(' | ')} |`

function attempt(o: Outcome): string {
  return o.retries === 0 ? 'same attempt' : `after ${o.retries} retr${o.retries === 1 ? 'y' : 'ies'}`
}

/** A short cell: where it went and when, e.g. "IPv4, same attempt" or "IPv6 only (8 tries)". */
function short(o: Outcome): string {
  const dup = o.copies > 1 ? `, ${o.copies} copies` : ''
  if (o.delivered) return `${o.via === 'IPv4 MX' ? (o.ipv6Tries === 0 ? 'IPv4 first' : 'IPv4') : o.via}, ${attempt(o)}${dup}`
  if (o.dsn) return o.ipv6Tries <= 1 ? 'bounce, no loop' : `bounce after ${o.ipv6Tries} tries`
  return `queued: IPv6 only (${o.ipv6Tries} tries)`
}

export function formatSummary(r: MatrixResult): string {
  const senders = [...new Set(r.outcomes.map((o) => o.sender))]
  const head = ['sender', ...r.scenarios.map((s) => s.id)]
  const rows = senders.map((s) => [
    `${s} ${r.versions[s] ?? ''}`.trim(),
    ...r.scenarios.map((sc) => {
      const o = r.outcomes.find((x) => x.sender === s && x.scenario === sc.id)
      return o ? short(o) : ''
    }),
  ])
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

function cells(o: Outcome): string[] {
  const result = o.delivered ? `delivered via ${o.via}${o.copies > 1 ? ` (${o.copies} copies)` : ''}` : o.dsn ? 'bounced' : 'not delivered'
  const when = o.delivered || o.dsn ? attempt(o) : `${o.note}${o.retries ? `; ${o.retries} retries` : ''}`
  const dsn = o.dsn ? 'yes' : o.delayWarnings ? `delay warning only` : 'no'
  return [result, when, `${o.delay} s`, String(o.ipv6Tries), String(o.bodyCrossings), dsn]
}

export function formatTable(r: MatrixResult): string {
  const head = ['sender', 'scenario', 'result', 'attempt', 'delay', 'IPv6 tries', 'body sent', 'DSN']
  const rows = r.outcomes.map((o) => [`${o.sender} ${r.versions[o.sender] ?? ''}`.trim(), o.scenario, ...cells(o)])
  const scen = r.scenarios.map((s) => `- \`${s.id}\`: ${s.title}`).join('\n')
  return [line(head), line(head.map(() => '---')), ...rows.map(line), '', scen].join('\n')
}
