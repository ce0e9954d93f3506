/**
 * Mocha's spec reporter plus one plain closing line, "N passed, N failed, N
 * skipped", which CI reads the same way for any test runner.
 */
import Mocha = require('mocha');

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class SpecWithSummary extends Spec {
  constructor (runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const stats = runner.stats!;
      process.stdout.write(`\ntests: ${stats.passes} passed, ${stats.failures} failed, ${stats.pending} skipped\n`);
    });
  }
}

export = SpecWithSummary;
