// Small statistics helpers for the benchmark.

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/** Decision times logged by mx6-receive ("... (0.412 ms)") for one phase, from a Haraka log. */
export function decisionTimes(log: string, phase: 'rcpt' | 'data_post'): number[] {
  const re = new RegExp(`\\[mx6-receive\\] ${phase}\\b[^\\n]* \\((\\d+\\.\\d+) ms\\)$`, 'gm')
  return [...log.matchAll(re)].map((m) => Number(m[1]))
}

/** Event-loop delay p99 samples (ms) logged by the bench's event-loop monitor plugin. */
export function loopDelays(log: string): number[] {
  return [...log.matchAll(/\[bench-eld\] eld p99=(\d+\.\d+)/g)].map((m) => Number(m[1]))
}

/** Redis round trips (ms) measured from inside Haraka by the bench's probe plugin. */
export function probeRtts(log: string): number[] {
  return [...log.matchAll(/\[bench-eld\] redis rtt ms=([\d.,]+)/g)].flatMap((m) => m[1].split(',').map(Number))
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a'
}
