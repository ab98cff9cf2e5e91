/** The typed gRPC image API, trident.v1.Predict: unary and streaming. */
import { TridentError } from '../../base/errors';
import type * as grpc from '@grpc/grpc-js';
import { callContext, orderedStream, unary } from './calls';
import type { CallContext, InferenceService, PredictResponse } from '../core/service';

export interface PredictMessage {
  model_name: string;
  model_version: string;
  images: Buffer[];
  top_k: number;
  object_threshold?: number | null;
  id: string;
}

function toMessage(r: PredictResponse, id: string): object {
  return {
    model_name: r.model_name,
    model_version: r.model_version,
    id,
    predictions: r.predictions.map((p) => ({
      class: { label: p.class.label, index: p.class.index, score: p.class.score },
      top_k: p.class.top_k,
      object_score: p.object.score,
      object_present: p.object.present,
      object_threshold: p.object.threshold,
      box: { x1: p.box.x1, y1: p.box.y1, x2: p.box.x2, y2: p.box.y2 },
      box_normalised: p.box.normalised,
      image_width: p.image.width,
      image_height: p.image.height,
    })),
  };
}

async function predict(service: InferenceService, r: PredictMessage, ctx: CallContext): Promise<object> {
  const response = await service.predict(
    {
      model: r.model_name || undefined,
      version: r.model_version || undefined,
      images: r.images,
      topK: r.top_k || undefined,
      objectThreshold: r.object_threshold ?? undefined,
    },
    ctx,
  );
  return toMessage(response, r.id);
}

const named = (r: PredictMessage) => r.model_name || undefined;

export function predictHandlers(service: InferenceService): grpc.UntypedServiceImplementation {
  return {
    Predict: unary(service, 'predict', (r: PredictMessage, call) => predict(service, r, callContext(call)), named),
    PredictStream: orderedStream(
      service,
      'predict_stream',
      async (r: PredictMessage, ctx) => ({ error_message: '', response: await predict(service, r, ctx) }),
      (error: TridentError, r: PredictMessage) => ({ error_message: error.message, response: { id: r.id ?? '' } }),
      named,
    ),
  };
}
