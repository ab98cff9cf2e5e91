/** A fine-tune job event's content without its type: the SSE `data:` and the gRPC oneof member. */
import type { JobEvent } from '../../finetune/record';

export function eventPayload(event: JobEvent): unknown {
  switch (event.type) {
    case 'snapshot':
    case 'end':
      return event.job;
    case 'state':
      return { state: event.state };
    case 'ready':
      return event.ready;
    case 'step':
      return event.step;
    case 'epoch':
      return event.epoch;
    case 'evaluation':
      return event.evaluation;
    case 'decision':
      return event.decision;
    case 'warning':
      return { message: event.warning };
  }
}
