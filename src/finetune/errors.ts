/** The fine-tune job system's one failure of its own: a second job for a model that has one. */
import { TridentError } from '../base/errors';

/** A `conflict` naming the job that holds the model, also as the `job_id` detail. */
export function jobConflict(model: string, runningJobId: string): TridentError {
  return new TridentError('conflict', `model "${model}" already has a fine-tune job in progress: ${runningJobId}`, { job_id: runningJobId });
}
