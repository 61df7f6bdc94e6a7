// The interop matrix as a Markdown table (README and docs/interop.md paste it as is).
import type { MatrixResult } from './matrix'
import type { Outcome } from './scenario'

function cell(o: Outcome): string[] {
  const result = o.delivered ? `delivered via ${o.via}${o.copies > 1 ? ` (${o.copies} copies)` : ''}` : o.dsn ? 'bounced' : 'not delivered'
  const attempt = o.retries === 0 ? 'same attempt' : `after ${o.retries} retr${o.retries === 1 ? 'y' : 'ies'}`
  return [result, o.delivered || o.dsn ? attempt : o.note, `${o.delay} s`, String(o.ipv6Tries), String(o.bodyCrossings), o.dsn ? 'yes' : 'no']
}

export function formatTable(r: MatrixResult): string {
  const head = ['sender', 'scenario', 'result', 'attempt', 'delay', 'IPv6 tries', 'body sent', 'DSN']
  const rows = r.outcomes.map((o) => [`${o.sender} ${r.versions[o.sender] ?? ''}`.trim(), o.scenario, ...cell(o)])
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  const scen = r.scenarios.map((s) => `- \`${s.id}\`: ${s.title}`).join('\n')
  return [line(head), line(head.map(() => '---')), ...rows.map(line), '', scen].join('\n')
}
