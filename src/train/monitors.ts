/** What early stopping and "best epoch" watch: a score per epoch, higher is better. */
import type { Metrics } from '../runtime/metrics';
import type { Documented } from '../base/choices';

export interface Monitor extends Documented {
  score(epoch: { valLoss: number; metrics: Metrics }): number;
}

export const MONITORS = Object.freeze({
  val_loss: { doc: 'validation loss (weighted sum of the task losses), lower is better', score: (e) => -e.valLoss },
  detection: { doc: 'share of validation samples with the object found, the class right and IoU ≥ 0.5', score: (e) => e.metrics.detectionCorrect },
} satisfies Record<string, Monitor>);

export type MonitorName = keyof typeof MONITORS;
