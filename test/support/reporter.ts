// mocha's spec reporter, plus a plain closing line "N passed, N failed[, N skipped]" that
// tools reading only the last line of a run understand.
import Mocha from 'mocha'

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options)
    runner.once('end', () => {
      const s = runner.stats
      if (!s) return
      const skipped = s.pending ? `, ${s.pending} skipped` : ''
      process.stdout.write(`${s.passes} passed, ${s.failures} failed${skipped}\n`)
    })
  }
}

export = SpecWithSummary
