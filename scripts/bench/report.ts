// The benchmark's output: the table printed at the end of a run, and the chart's panels.
import { niceTicks, type Panel } from './chart'
import { FLOOR_BUDGET, overFloor, pairs, pathSpreads, totalCpu, type Budget, type PerMessage, type Row, type Scale } from './budgets'
import { fmt } from './stats'

/**
 * The chart's panels: throughput ratio per path against its budget, latency by list size,
 * memory. In --quick mode the budgets are drawn but no verdict is given (nothing is asserted).
 */
export function panels(rows: Row[], scaling: Scale[], memory: Record<string, number>, quick: boolean): Panel[] {
  const ratios: Panel['rows'] = pairs(rows).map(({ path: p, sessions: s, b, ratio, min }) => ({
    label: `${p}, ${s} session${s === 1 ? '' : 's'}`,
    dots: [
      { value: ratio, series: 'msg/s with / without (alternating rounds)' },
      ...(b.concurrent ? [{ value: b.concurrent.ratio, series: 'Haraka CPU per message without / with (concurrent rounds)' }, { value: b.concurrent.control.ratio, series: 'the same, Haraka alone / a second Haraka alone (A/A control)' }] : []),
      ...(b.concurrent?.floor ? [{ value: b.concurrent.floor.ratio, series: 'the same, Haraka alone / Haraka with the floor plugin' }] : []),
      ...(b.concurrent?.rspamd ? [{ value: b.concurrent.rspamd.ratio, series: 'the same, Haraka alone / Haraka with haraka-plugin-rspamd (Haraka only)' }] : []),
    ],
    // The floor's paths: the suite's budget is a share of the floor's figure (see budgets.ts).
    budget: b.concurrent?.floor ? FLOOR_BUDGET * b.concurrent.floor.ratio : min,
    // The figure that counts: the concurrent rounds where there are some (see HELP).
    pass: quick ? undefined : (b.concurrent?.ratio ?? ratio) >= (b.concurrent?.floor ? FLOOR_BUDGET * b.concurrent.floor.ratio : min),
  }))
  const lowest = Math.min(0.8, ...ratios.flatMap((r) => r.dots.map((d) => d.value)).filter(Number.isFinite))
  const from = Math.max(0, Math.floor(lowest * 20) / 20)
  const out: Panel[] = [{ title: 'Throughput with the suite / without (1.00 = no cost)', axis: { min: from, max: 1.05, ticks: niceTicks(from, 1.05, 0.05), unit: '' }, rows: ratios }]
  if (scaling.length) {
    const top = Math.max(...scaling.map((z) => z.rcpt.p99).filter(Number.isFinite), 0.001) * 1.1
    const small = scaling[0].rcpt.p50
    out.push({
      title: 'Decision latency by list size (rcpt, Redis asked every time, 1 session)',
      axis: { min: 0, max: top, ticks: niceTicks(0, top), unit: ' ms' },
      rows: scaling.map((z, i) => ({
        label: `${z.entries.toLocaleString('en')} ip:allow entries`,
        dots: [
          { value: z.rcpt.p50, series: 'p50' },
          { value: z.rcpt.p99, series: 'p99' },
        ],
        // The budget: p50 of the largest list within 1.2 x that of the smallest.
        ...(i === scaling.length - 1 && i > 0 ? { budget: 1.2 * small, pass: quick ? undefined : z.rcpt.p50 <= 1.2 * small } : {}),
      })),
    })
  }
  const rss: Panel['rows'] = [
    { label: 'Haraka alone, after the runs', dots: [{ value: memory.haraka, series: 'RSS' }] },
    { label: 'Haraka + mx6, after the runs', dots: [{ value: memory['haraka+mx6'], series: 'RSS' }] },
    ...scaling.map((z) => ({ label: `Haraka + mx6, ${z.entries.toLocaleString('en')} entries`, dots: [{ value: z.rssMiB, series: 'RSS' }] })),
  ]
  const most = Math.max(...rss.flatMap((r) => r.dots.map((d) => d.value)).filter(Number.isFinite), 1) * 1.1
  out.push({ title: "Haraka's memory (RSS)", axis: { min: 0, max: most, ticks: niceTicks(0, most), unit: ' MiB' }, rows: rss })
  return out
}

export function printTable(rows: Row[], rtt: { p50: number; p99: number }, scaling: Scale[], memory: Record<string, number>, verdicts: Budget[], pinned: boolean): void {
  const w = (s: string, n: number) => s.padEnd(n)
  const lines = [
    '',
    pinned ? 'Haraka pinned to CPU 1; Redis and the load generators on CPU 0.' : 'Not pinned: Haraka, Redis and the load generators share the CPUs.',
    `Redis round trip (ioredis PING from an idle client${pinned ? ' on the other CPU' : ''} before the runs): p50 ${fmt(rtt.p50, 3)} ms, p99 ${fmt(rtt.p99, 3)} ms`,
    '',
    `${w('path', 22)}${w('sessions', 9)}${w('haraka msg/s', 14)}${w('+mx6 msg/s', 12)}${w('ratio', 7)}${w('rounds', 13)}${w('concurrent', 11)}${w('A/A', 7)}${w('CPU ms/msg haraka / +mx6 (+redis)', 35)}${w('busy %', 11)}${w('rcpt p50/p99 ms', 18)}${w('data_post p50/p99', 19)}${w('cmds/reads/decision reads', 27)}${w('eld p99 ms', 12)}redis rtt in Haraka p50/p99 ms (haraka / +mx6)`,
  ]
  for (const { path: p, sessions: s, a, b, ratio } of pairs(rows)) {
    lines.push(
      `${w(p, 22)}${w(String(s), 9)}${w(fmt(a.load.perSecond, 1), 14)}${w(fmt(b.load.perSecond, 1), 12)}${w(fmt(ratio, 3), 7)}${w(b.roundRatios?.length ? `${fmt(Math.min(...b.roundRatios), 2)}-${fmt(Math.max(...b.roundRatios), 2)}` : '-', 13)}${w(b.concurrent ? fmt(b.concurrent.ratio, 3) : '-', 11)}${w(b.concurrent ? fmt(b.concurrent.control.ratio, 3) : '-', 7)}` +
        `${w(`${fmt(a.cpu.haraka, 3)} / ${fmt(b.cpu.haraka, 3)} (+${fmt(b.cpu.redis, 3)})`, 35)}${w(`${fmt(a.busy * 100, 0)} / ${fmt(b.busy * 100, 0)}`, 11)}` +
        `${w(b.rcpt ? `${fmt(b.rcpt.p50, 3)}/${fmt(b.rcpt.p99, 3)}` : '-', 18)}${w(b.dataPost && Number.isFinite(b.dataPost.p50) ? `${fmt(b.dataPost.p50, 3)}/${fmt(b.dataPost.p99, 3)}` : '-', 19)}` +
        `${w(b.perMessage ? `${fmt(b.perMessage.commands, 2)}/${fmt(b.perMessage.reads, 2)}/${fmt(b.perMessage.decisionReads, 2)}` : '-', 27)}${w(`${fmt(a.eldP99 ?? NaN, 1)} / ${fmt(b.eldP99 ?? NaN, 1)}`, 12)}${fmt(a.probeRtt?.p50 ?? NaN, 3)}/${fmt(a.probeRtt?.p99 ?? NaN, 3)} / ${fmt(b.probeRtt?.p50 ?? NaN, 3)}/${fmt(b.probeRtt?.p99 ?? NaN, 3)}`,
    )
  }
  lines.push('', 'scaling (unknown IPv6 peers deferred at RCPT, peer list cache off, 1 session; each size its own Haraka and key prefix, in alternating rounds):')
  for (const s of scaling) lines.push(`  ${String(s.entries).padStart(8)} ip:allow entries (+ as many book members): rcpt p50 ${fmt(s.rcpt.p50, 3)} ms, p99 ${fmt(s.rcpt.p99, 3)} ms, Redis CPU ${fmt(s.redisMs, 3)} ms/msg (in Redis per call: EVALSHA, the lookup and follow-up scripts, ${fmt(s.redisUs.evalsha, 1)} us; HMGET of the 129 candidates in ip:allow and ip:green ${fmt(s.redisUs.hmget, 1)} us), Haraka RSS ${fmt(s.rssMiB, 1)} MiB`)
  lines.push('', `memory: Haraka RSS ${fmt(memory.haraka, 1)} MiB without the suite, ${fmt(memory['haraka+mx6'], 1)} MiB with it`, '')
  lines.push(...peerLines(rows))
  for (const v of verdicts) lines.push(`  ${v.verdict.padEnd(17)}  ${v.name}: ${v.measured}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

/**
 * The concurrent rounds' configurations side by side, per path: throughput relative to
 * Haraka alone (its CPU per message over each one's) and the total CPU per message of every
 * process involved, with the path's A/A spread; then the heading of the budgets.
 */
export function peerLines(rows: Row[]): string[] {
  const w = (x: string, n: number) => x.padEnd(n)
  const cell = (ratio: number | undefined, m: PerMessage | undefined) => (m && ratio !== undefined ? `${fmt(ratio, 3)} / ${fmt(totalCpu(m), 3)}` : '-')
  const spreads = pathSpreads(rows)
  const out = ['concurrent rounds: throughput relative to Haraka alone (its CPU per message over each one\'s) / total CPU ms per message (Haraka + its own Redis or rspamd):', `  ${w('path', 22)}${w('sessions', 9)}${w('haraka alone', 20)}${w('floor', 20)}${w('suite', 20)}${w('rspamd', 20)}${w('suite/floor', 13)}A/A spread`]
  for (const { path: p, sessions: s, b } of pairs(rows)) {
    const c = b.concurrent
    if (!c?.cpu) continue
    out.push(`  ${w(p, 22)}${w(String(s), 9)}${w(cell(1, c.cpu.alone), 20)}${w(cell(c.floor?.ratio, c.cpu.floor), 20)}${w(cell(c.ratio, c.cpu.suite), 20)}${w(cell(c.rspamd?.ratio, c.cpu.rspamd), 20)}${w(c.floor ? fmt(overFloor(c)!.ratio, 3) : '-', 13)}${fmt(spreads.get(p) ?? NaN, 3)}`)
  }
  return [...out, '', 'budgets (PASS; FAIL: short of the budget by more than the A/A spread; within the spread: short by less):']
}
