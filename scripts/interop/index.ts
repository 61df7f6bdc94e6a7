// npm run interop: which sending MTAs come back over IPv4 after our IPv6 MX deferred them.
// Runs every sender through every scenario in the test bed (scripts/testbed.sh) and prints
// the matrix as tables (a summary, then one row per outcome), or as JSON with --json.
// Options: --sender a,b  --scenario x,y  --from-json <file> (print the tables of a JSON run).
// MX6_INTEROP_DEBUG=1 prints a sender's log when a case ends undecided, =all after every case
// (with the IPv6 receiver's log), =dsn the DSNs received.
import fs from 'node:fs'
import { requireTestbed } from '../../test/support/net'
import { SCENARIOS, type Outcome } from '../../test/support/interop/scenario'
import { runMatrix, SENDERS, type MatrixResult } from '../../test/support/interop/matrix'
import { formatSummary, formatTable } from '../../test/support/interop/table'

function listArg(name: string): string[] | undefined {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1]?.split(',') : undefined
}

async function main(): Promise<void> {
  const saved = listArg('--from-json')?.[0]
  if (saved) {
    const r = JSON.parse(fs.readFileSync(saved, 'utf8')) as MatrixResult
    process.stdout.write(`${formatSummary(r)}\n\n${formatTable(r)}\n`)
    return
  }
  requireTestbed()
  const senders = listArg('--sender') ?? Object.keys(SENDERS)
  const scenarios = listArg('--scenario') ?? SCENARIOS.map((s) => s.id)
  const json = process.argv.includes('--json')
  const result = await runMatrix(senders, scenarios, (o: Outcome) => {
    if (!json) process.stderr.write(`  ${o.sender} ${o.scenario}: ${o.delivered ? `delivered via ${o.via}` : o.dsn ? 'bounced' : 'not delivered'}\n`)
  })
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  else process.stdout.write(`${formatSummary(result)}\n\n${formatTable(result)}\n`)
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`interop: ${err.stack ?? err.message}\n`)
    process.exit(1)
  },
)
