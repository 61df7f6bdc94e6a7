// Runs senders through scenarios: one receiver per value of `undecided`, one sender at a time
// (they share the sender namespace), each scenario bounded in time.
import { PostfixInterop } from './postfix'
import { EximSender } from './exim'
import { HarakaSender } from './haraka-sender'
import { OpenSmtpdSender } from './opensmtpd'
import { InteropReceiver, runScenario, SCENARIOS, type Outcome, type Undecided } from './scenario'
import type { InteropSender } from './types'

export interface SenderSpec {
  start: () => Promise<InteropSender>
  /** Per-scenario bound and queue kicks (see runScenario). */
  boundMs: number
  kickMs?: number
}

export const SENDERS: Record<string, SenderSpec> = {
  postfix: { start: () => PostfixInterop.start(), boundMs: 15000 },
  exim: { start: () => EximSender.start(), boundMs: 15000 },
  // The same Exim with hosts_avoid_pipelining (exim.ts says why it is worth a row).
  'exim-nopipe': { start: () => EximSender.start({ pipelining: false }), boundMs: 15000 },
  opensmtpd: { start: () => OpenSmtpdSender.start(), boundMs: 15000, kickMs: 2000 },
  haraka: { start: () => HarakaSender.start(false), boundMs: 20000 },
  'haraka+mx6-send': { start: () => HarakaSender.start(true), boundMs: 20000 },
}

export interface MatrixResult {
  versions: Record<string, string>
  scenarios: { id: string; title: string }[]
  outcomes: Outcome[]
}

export async function runMatrix(senders: string[], scenarioIds: string[], progress: (o: Outcome) => void = () => undefined): Promise<MatrixResult> {
  const scenarios = SCENARIOS.filter((s) => scenarioIds.includes(s.id))
  const result: MatrixResult = { versions: {}, scenarios: scenarios.map(({ id, title }) => ({ id, title })), outcomes: [] }
  for (const undecided of ['defer', 'wait'] as Undecided[]) {
    const mine = scenarios.filter((s) => s.undecided === undecided)
    if (mine.length === 0) continue
    const rx = await InteropReceiver.start(undecided)
    try {
      for (const name of senders) {
        const spec = SENDERS[name]
        if (!spec) throw new Error(`unknown sender ${name} (known: ${Object.keys(SENDERS).join(', ')})`)
        const sender = await spec.start()
        try {
          result.versions[name] ??= await sender.version()
          for (const sc of mine) {
            const o = await runScenario(sender, rx, sc, { boundMs: spec.boundMs, kickMs: spec.kickMs })
            result.outcomes.push(o)
            progress(o)
          }
        } finally {
          await sender.stop()
        }
      }
    } finally {
      await rx.stop()
    }
  }
  // Table order: senders as asked, scenarios as listed.
  result.outcomes.sort((a, b) => senders.indexOf(a.sender) - senders.indexOf(b.sender) || scenarioIds.indexOf(a.scenario) - scenarioIds.indexOf(b.scenario))
  return result
}
