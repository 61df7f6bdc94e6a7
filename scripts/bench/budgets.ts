// The benchmark's verdicts: what was measured (rows, scaling, memory) against each budget.
// Pure functions of the figures, apart from the run, so that they are unit-tested.
import { PATHS, type LoadResult, type Path } from './load'
import { fmt } from './stats'

/** One list size: the decision's latency, Redis's CPU per message, Haraka's RSS. */
export interface Scale {
  entries: number
  rcpt: { p50: number; p99: number }
  redisMs: number
  /** Redis's own time per call (INFO commandstats, microseconds): EVALSHA (the lookup and follow-up scripts), and the HMGETs of the lookup script (ip:allow, ip:green). */
  redisUs: { evalsha: number; hmget: number }
  rssMiB: number
}

export interface Row {
  config: 'haraka' | 'haraka+mx6'
  path: Path
  sessions: number
  load: LoadResult
  /** CPU milliseconds per message: Haraka, and Redis (serving this configuration). */
  cpu: { haraka: number; redis: number }
  /** Haraka's CPU time over wall time during the rounds: 1.0 = one core fully busy. */
  busy: number
  rcpt?: { p50: number; p99: number }
  dataPost?: { p50: number; p99: number }
  /** Redis commands, reads and decision reads (reads less follow-up script calls) per message. */
  perMessage?: { commands: number; reads: number; decisionReads: number }
  eldP99?: number
  /** One Redis round trip measured from inside this Haraka during the same rounds. */
  probeRtt?: { p50: number; p99: number }
  /** With the suite: the throughput ratio of each round pair (how much the machine drifted). */
  roundRatios?: number[]
  /**
   * With the suite, several sessions: Haraka's CPU time per message without / with the
   * suite, both loaded at the same time on the same CPU (overall, and per round).
   */
  concurrent?: Concurrent
}

/** A ratio of Haraka alone's CPU per message over another process's, over all rounds and per round. */
export interface Ratio {
  ratio: number
  rounds: number[]
}

/** CPU milliseconds per message of every process a configuration involves. */
export interface PerMessage {
  haraka: number
  /** The configuration's own Redis (the suite, the floor); 0 without. */
  redis: number
  /** rspamd's processes (main, workers, hs_helper); 0 without. */
  rspamd: number
}

export interface Concurrent {
  /** Haraka's CPU time per message without / with the suite, over all rounds, and per round. */
  ratio: number
  rounds: number[]
  /**
   * The same ratio between Haraka alone and a second, identical Haraka alone loaded in the
   * same rounds (an A/A control): how far apart two processes of the same code land, the
   * resolution of the ratio above.
   */
  control: Ratio
  /** The same ratio for Haraka with the path's floor plugin instead of the suite (deferred and cache-off paths). */
  floor?: Ratio
  /** The same ratio for Haraka with haraka-plugin-rspamd (and no spf, dkim or suite) in front of a private rspamd. */
  rspamd?: Ratio
  /** Every process's CPU per message, per configuration, over all rounds. */
  cpu?: { alone: PerMessage; suite: PerMessage; floor?: PerMessage; rspamd?: PerMessage }
}

/**
 * PASS: at the budget or better. FAIL: worse than the budget by more than the run's A/A
 * spread. "within the spread": worse than the budget, but by less than the method can tell
 * apart. "reported": a figure without a budget. "not judged": --quick.
 */
export type Verdict = 'PASS' | 'FAIL' | 'within the spread' | 'reported' | 'not judged'

export interface Budget {
  name: string
  measured: string
  verdict: Verdict
  /** False only for FAIL: the run's exit status. */
  pass: boolean
}

/** The floor's budget: the suite's throughput at least this share of the floor's, on FLOOR_PATHS. */
export const FLOOR_BUDGET = 0.97
/** The rspamd budget: the suite's total CPU per message at most this share of the rspamd setup's, on every IPv6 path. */
export const RSPAMD_BUDGET = 0.5
/** The paths judged against the contract's floor (their absolute 0.95 budgets are retired: only reported). */
export const FLOOR_PATHS: readonly Path[] = ['ipv6-deferred', 'ipv6-allowed-uncached']

/**
 * The run's A/A spread from the control's per-round ratios (Haraka alone over a second
 * Haraka alone, loaded at once): the largest deviation of one round from 1, as a fraction.
 * 0 when there are no rounds.
 */
export function spreadOf(control: readonly number[]): number {
  const d = control.filter(Number.isFinite).map((r) => Math.abs(r - 1))
  return d.length ? Math.max(...d) : 0
}

/**
 * A ratio against its budget, with the spread as a relative resolution: at least `budget`
 * (or at most, with atMost) is PASS; off by more than budget x spread is FAIL; in between
 * "within the spread". A figure that is not a number fails.
 */
export function judge(value: number, budget: number, spread: number, atMost = false): Verdict {
  if (!Number.isFinite(value)) return 'FAIL'
  if (atMost ? value <= budget : value >= budget) return 'PASS'
  const edge = atMost ? budget * (1 + spread) : budget * (1 - spread)
  return (atMost ? value > edge : value < edge) ? 'FAIL' : 'within the spread'
}

/** All of a configuration's CPU per message: Haraka, its Redis, rspamd. */
export function totalCpu(m: PerMessage): number {
  return m.haraka + m.redis + m.rspamd
}

/** The suite's throughput over the floor's in the concurrent rounds (Haraka CPU per message, floor / suite), overall and per round. */
export function overFloor(c: Concurrent): Ratio | undefined {
  if (!c.floor) return undefined
  return { ratio: c.ratio / c.floor.ratio, rounds: c.rounds.map((r, i) => r / c.floor!.rounds[i]) }
}

/** Per path, the A/A spread of its concurrent rounds (of the last session count that had some). */
export function pathSpreads(rows: Row[]): Map<Path, number> {
  const out = new Map<Path, number>()
  for (const r of rows) if (r.concurrent) out.set(r.path, spreadOf(r.concurrent.control.rounds))
  return out
}

function budget(name: string, measured: string, verdict: Verdict): Budget {
  return { name, measured, verdict, pass: verdict !== 'FAIL' }
}

/** PASS or FAIL, for a budget the A/A spread does not apply to (counts, latencies, memory). */
function plain(name: string, measured: string, pass: boolean): Budget {
  return budget(name, measured, pass ? 'PASS' : 'FAIL')
}

/** Each path and session count measured in both configurations: the two rows, the alternating ratio and the budget. */
export function pairs(rows: Row[]): Array<{ path: Path; sessions: number; a: Row; b: Row; ratio: number; min: number }> {
  const out: Array<{ path: Path; sessions: number; a: Row; b: Row; ratio: number; min: number }> = []
  const find = (config: Row['config'], p: Path, s: number) => rows.find((r) => r.config === config && r.path === p && r.sessions === s)
  for (const sessions of [...new Set(rows.map((r) => r.sessions))]) {
    for (const path of PATHS) {
      const a = find('haraka', path, sessions)
      const b = find('haraka+mx6', path, sessions)
      if (a && b) out.push({ path, sessions, a, b, ratio: b.load.perSecond / a.load.perSecond, min: path === 'ipv4' ? 0.99 : 0.95 })
    }
  }
  return out
}

/**
 * Every budget with its figure and verdict: throughput per pair (and per concurrent rounds,
 * where run: the suite against Haraka alone, against the floor, and its total CPU against the
 * rspamd setup's), judged against the path's A/A spread; decision reads, decision latency
 * against Redis's round trip, scaling with list size (PASS or FAIL). Figures only reported
 * always pass; --quick judges nothing (all pass, "not judged").
 */
export function budgets(rows: Row[], rtt: { p50: number; p99: number }, scaling: Scale[], memory: Record<string, number>, quick: boolean): Budget[] {
  const out: Budget[] = []
  const spreads = pathSpreads(rows)
  for (const { path: p, sessions: s, b, ratio, min } of pairs(rows)) {
    const spread = spreads.get(p) ?? 0
    const aa = spreads.has(p) ? `A/A spread ${fmt(spread, 3)}` : 'no A/A spread measured'
    // On the floor's paths the absolute budget measured the contract, not the suite: reported only.
    const retired = FLOOR_PATHS.includes(p)
    const against = retired ? '(reported; judged against the floor)' : `>= ${fmt(min, 2)}`
    out.push(budget(`throughput ${p}, ${s} session(s): with/without ${against}`, `${fmt(ratio, 3)} (${aa})`, retired ? 'reported' : judge(ratio, min, spread)))
    const c = b.concurrent
    if (!c) continue
    out.push(budget(`throughput ${p}, ${s} sessions, concurrent rounds (Haraka CPU per message without/with) ${against}`, `${fmt(c.ratio, 3)} (rounds ${fmt(Math.min(...c.rounds), 3)}-${fmt(Math.max(...c.rounds), 3)}; A/A control ${fmt(c.control.ratio, 3)}, spread ${fmt(spread, 3)})`, retired ? 'reported' : judge(c.ratio, min, spread)))
    const f = overFloor(c)
    if (f) out.push(budget(`throughput ${p}, ${s} sessions, concurrent rounds: suite / floor >= ${fmt(FLOOR_BUDGET, 2)}`, `${fmt(f.ratio, 3)} (rounds ${fmt(Math.min(...f.rounds), 3)}-${fmt(Math.max(...f.rounds), 3)}; floor ${fmt(c.floor!.ratio, 3)} and suite ${fmt(c.ratio, 3)} of Haraka alone; A/A spread ${fmt(spread, 3)})`, judge(f.ratio, FLOOR_BUDGET, spread)))
    const cpu = c.cpu
    if (cpu?.rspamd) {
      const share = totalCpu(cpu.suite) / totalCpu(cpu.rspamd)
      const name = `total CPU per message, ${p}, ${s} sessions: suite (Haraka + Redis) / rspamd setup (Haraka + rspamd) ${p === 'ipv4' ? '(reported; IPv4 is not filtered)' : `<= ${fmt(RSPAMD_BUDGET, 2)}`}`
      // What a suite costing nothing would measure: Haraka alone's total against the rspamd setup's.
      const aloneShare = totalCpu(cpu.alone) / totalCpu(cpu.rspamd)
      const reach = aloneShare > RSPAMD_BUDGET ? `; out of reach: Haraka alone is ${fmt(aloneShare, 3)} of it` : `; Haraka alone ${fmt(aloneShare, 3)}`
      const measured = `${fmt(share, 3)} (${fmt(cpu.suite.haraka, 3)} + ${fmt(cpu.suite.redis, 3)} ms vs ${fmt(cpu.rspamd.haraka, 3)} + ${fmt(cpu.rspamd.rspamd, 3)} ms${reach}; A/A spread ${fmt(spread, 3)})`
      out.push(budget(name, measured, p === 'ipv4' ? 'reported' : judge(share, RSPAMD_BUDGET, spread, true)))
      // Both totals are mostly Haraka's own work: what each setup adds to Haraka alone (spf and
      // dkim included; the rspamd setup's Haraka runs neither) shows the policies' own cost.
      const extra = (m: PerMessage) => totalCpu(m) - totalCpu(cpu.alone)
      out.push(budget(`CPU per message beyond Haraka alone, ${p}, ${s} sessions: suite / rspamd setup (reported)`, `${fmt(extra(cpu.suite), 3)} ms vs ${fmt(extra(cpu.rspamd), 3)} ms`, 'reported'))
    }
  }
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.perMessage && x.sessions === 1 && x.path !== 'ipv4')) {
    // Two decision phases per message at most (rcpt, whose lookups start at MAIL, and
    // data_post): one read each, plus the once-a-second counter flush. The follow-up
    // records of deferred attempts (one script call for several) are not decision reads.
    const m = r.perMessage!
    out.push(plain(`Redis decision reads per message on ${r.path} <= 2 (one round trip per phase)`, `${fmt(m.decisionReads, 2)} (${fmt(m.reads, 2)} reads in all, ${fmt(m.commands, 2)} commands)`, m.decisionReads <= 2.05))
  }
  // One Redis round trip: measured from inside the same Haraka during the same rounds
  // (the probe plugin), and, for reference, from an idle client before the runs.
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.sessions === 1 && (x.rcpt || x.dataPost))) {
    const floor = r.probeRtt?.p99 ?? NaN
    for (const [phase, t] of [['rcpt', r.rcpt], ['data_post', r.dataPost]] as const) {
      if (!t) continue
      out.push(plain(`decision latency p99, ${r.path} ${phase} (1 session) <= 3 x Redis round trip p99 in Haraka`, `${fmt(t.p99, 3)} ms vs 3 x ${fmt(floor, 3)} ms (idle client: ${fmt(rtt.p99, 3)} ms)`, t.p99 <= 3 * floor))
    }
  }
  if (scaling.length >= 2) {
    const small = scaling[0]
    const big = scaling.at(-1)!
    const ratio = big.rcpt.p50 / small.rcpt.p50
    out.push(plain(`decision latency ${big.entries} vs ${small.entries} entries <= 1.2`, fmt(ratio, 3), ratio <= 1.2))
    out.push(budget(`Redis CPU per decision, ${big.entries} vs ${small.entries} entries (reported)`, `${fmt(big.redisMs, 3)} / ${fmt(small.redisMs, 3)} ms`, 'reported'))
    const grow = big.rssMiB / small.rssMiB
    out.push(plain(`Haraka RSS ${big.entries} vs ${small.entries} entries unchanged (<= 1.1)`, `${fmt(big.rssMiB, 1)} / ${fmt(small.rssMiB, 1)} MiB`, grow <= 1.1))
  }
  out.push(budget('Haraka RSS with/without the suite (reported)', `${fmt(memory['haraka+mx6'], 1)} / ${fmt(memory.haraka, 1)} MiB`, 'reported'))
  if (quick) for (const b of out) Object.assign(b, { verdict: 'not judged', pass: true })
  return out
}
