// AdaptiveCurveIrm rates from Morpho's own TypeScript SDK, @morpho-org/blue-sdk (AdaptiveCurveIrmLib.getBorrowRate),
// for cross-checking chainrisk's port (tests/test_morpho_adaptive_irm.py).
//
// Input: one JSON object from the file named by argv[2]: {cases: [{utilization, start_rate_at_target, elapsed}]},
// integers as decimal strings (utilization and rates WAD, elapsed in seconds).
// Output (stdout): {rates: [{avg_rate, end_rate_at_target}]}, decimal strings.
import { readFileSync } from 'node:fs';
import { AdaptiveCurveIrmLib } from '@morpho-org/blue-sdk';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const rates = input.cases.map(c => {
  const got = AdaptiveCurveIrmLib.getBorrowRate(BigInt(c.utilization), BigInt(c.start_rate_at_target), BigInt(c.elapsed));
  return { avg_rate: got.avgBorrowRate.toString(), end_rate_at_target: got.endRateAtTarget.toString() };
});
process.stdout.write(JSON.stringify({ rates }));
