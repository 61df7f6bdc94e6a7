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

export interface Concurrent {
  /** Haraka's CPU time per message without / with the suite, over all rounds, and per round. */
  ratio: number
  rounds: number[]
  /**
   * The same ratio between Haraka alone and a second, identical Haraka alone loaded in the
   * same rounds (an A/A control): how far apart two processes of the same code land, the
   * resolution of the ratio above.
   */
  control: { ratio: number; rounds: number[] }
}

export interface Budget {
  name: string
  measured: string
  pass: boolean
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
 * where run), decision reads, decision latency against Redis's round trip, scaling with
 * list size. Figures only reported always pass; --quick asserts nothing (all pass).
 */
export function budgets(rows: Row[], rtt: { p50: number; p99: number }, scaling: Scale[], memory: Record<string, number>, quick: boolean): Budget[] {
  const out: Budget[] = []
  for (const { path: p, sessions: s, b, ratio, min } of pairs(rows)) {
    out.push({ name: `throughput ${p}, ${s} session(s): with/without >= ${fmt(min, 2)}`, measured: fmt(ratio, 3), pass: ratio >= min })
    const c = b.concurrent
    if (c) out.push({ name: `throughput ${p}, ${s} sessions, concurrent rounds (Haraka CPU per message without/with) >= ${fmt(min, 2)}`, measured: `${fmt(c.ratio, 3)} (rounds ${fmt(Math.min(...c.rounds), 3)}-${fmt(Math.max(...c.rounds), 3)}; A/A control ${fmt(c.control.ratio, 3)})`, pass: c.ratio >= min })
  }
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.perMessage && x.sessions === 1 && x.path !== 'ipv4')) {
    // Two decision phases per message at most (rcpt, whose lookups start at MAIL, and
    // data_post): one read each, plus the once-a-second counter flush. The follow-up
    // records of deferred attempts (one script call for several) are not decision reads.
    const m = r.perMessage!
    out.push({ name: `Redis decision reads per message on ${r.path} <= 2 (one round trip per phase)`, measured: `${fmt(m.decisionReads, 2)} (${fmt(m.reads, 2)} reads in all, ${fmt(m.commands, 2)} commands)`, pass: m.decisionReads <= 2.05 })
  }
  // One Redis round trip: measured from inside the same Haraka during the same rounds
  // (the probe plugin), and, for reference, from an idle client before the runs.
  for (const r of rows.filter((x) => x.config === 'haraka+mx6' && x.sessions === 1 && (x.rcpt || x.dataPost))) {
    const floor = r.probeRtt?.p99 ?? NaN
    for (const [phase, t] of [['rcpt', r.rcpt], ['data_post', r.dataPost]] as const) {
      if (!t) continue
      out.push({ name: `decision latency p99, ${r.path} ${phase} (1 session) <= 3 x Redis round trip p99 in Haraka`, measured: `${fmt(t.p99, 3)} ms vs 3 x ${fmt(floor, 3)} ms (idle client: ${fmt(rtt.p99, 3)} ms)`, pass: t.p99 <= 3 * floor })
    }
  }
  if (scaling.length >= 2) {
    const small = scaling[0]
    const big = scaling.at(-1)!
    const ratio = big.rcpt.p50 / small.rcpt.p50
    out.push({ name: `decision latency ${big.entries} vs ${small.entries} entries <= 1.2`, measured: fmt(ratio, 3), pass: ratio <= 1.2 })
    out.push({ name: `Redis CPU per decision, ${big.entries} vs ${small.entries} entries (reported)`, measured: `${fmt(big.redisMs, 3)} / ${fmt(small.redisMs, 3)} ms`, pass: true })
    const grow = big.rssMiB / small.rssMiB
    out.push({ name: `Haraka RSS ${big.entries} vs ${small.entries} entries unchanged (<= 1.1)`, measured: `${fmt(big.rssMiB, 1)} / ${fmt(small.rssMiB, 1)} MiB`, pass: grow <= 1.1 })
  }
  out.push({ name: 'Haraka RSS with/without the suite (reported)', measured: `${fmt(memory['haraka+mx6'], 1)} / ${fmt(memory.haraka, 1)} MiB`, pass: true })
  if (quick) for (const b of out) b.pass = true
  return out
}
