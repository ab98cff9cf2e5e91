/** The promotion gate: is the candidate not worse than the serving version on every evaluation set? */
import type { Evaluation, MetricsPair } from './record';

export interface GateResult {
  passed: boolean;
  promoted: boolean;
  forced: boolean;
  reason: string;
}

const fmt = (v: number) => v.toFixed(4);

export function decide(evaluation: Evaluation, force: boolean): GateResult {
  const { metric, tolerance } = evaluation;
  const sets = [evaluation.heldOut, ...(evaluation.reference ? [evaluation.reference] : [])];
  const verdicts = sets.map((set: MetricsPair) => {
    const candidate = set.candidate[metric];
    const serving = set.serving[metric];
    const ok = candidate >= serving - tolerance;
    return { ok, text: `${set.name} (${set.samples} samples): ${fmt(candidate)} vs ${fmt(serving)}${ok ? '' : ' (worse)'}` };
  });
  const passed = verdicts.every((v) => v.ok);
  const rule = `${metric}, candidate vs serving, tolerance ${tolerance}`;
  const summary = `${rule}: ${verdicts.map((v) => v.text).join('; ')}`;
  const skipped = evaluation.referenceSkipped ? `; reference set not used: ${evaluation.referenceSkipped}` : '';
  if (passed) return { passed, promoted: true, forced: false, reason: `not worse — ${summary}${skipped}` };
  if (force) return { passed, promoted: true, forced: true, reason: `worse, promoted because the job says force — ${summary}${skipped}` };
  return { passed, promoted: false, forced: false, reason: `worse, not promoted — ${summary}${skipped}` };
}
