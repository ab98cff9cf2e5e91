/**
 * What each execution provider needs on this machine, by the keys of EXECUTION_PROVIDERS (the
 * compiler holds the two tables to the same names).
 */
import { cudaPreflight, cudaProblems } from './cuda';
import type { Problem, ProviderName } from './execution-providers';

export interface ProviderChecks {
  /** What is missing, found without asking ONNX Runtime (cheap; run before every session). */
  preflight(): Problem[];
  /** Everything missing, each with its fix; run when ONNX Runtime could not create a session. */
  diagnose(): Problem[];
}

export const PROVIDER_CHECKS: Readonly<Record<ProviderName, ProviderChecks>> = Object.freeze({
  cpu: Object.freeze({ preflight: () => [], diagnose: () => [] }),
  cuda: Object.freeze({ preflight: () => cudaPreflight(), diagnose: () => cudaProblems() }),
});
