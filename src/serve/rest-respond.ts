/** What both REST entry points (express and the infer fast path) share: running an infer body, and writing answers and errors. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ServiceError } from './errors';
import { encodeInferResponse, parseInferBody, type EncodedResponse } from './rest-infer';
import type { CallContext, InferenceService } from './service';

/** Parses an OIP infer body (JSON or binary tensors), runs it and encodes the answer. */
export async function answerInfer(
  service: InferenceService,
  name: string,
  version: string | undefined,
  body: Buffer,
  headerLength: number | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<EncodedResponse> {
  const { request, format } = parseInferBody(name, version, body, headerLength, () => service.singleInput(name, version));
  return encodeInferResponse(await service.infer(request, callContext(req, res)), format);
}

/** No deadline in REST besides the OIP `timeout` parameter; the signal fires when the client goes away. */
export function callContext(_req: IncomingMessage, res: ServerResponse): CallContext {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return { signal: controller.signal };
}

export function sendEncoded(res: ServerResponse, encoded: EncodedResponse): void {
  if (encoded.headerLength !== undefined) res.setHeader('Inference-Header-Content-Length', encoded.headerLength);
  sendBody(res, 200, encoded.contentType, encoded.body);
}

/** Answers `{"error": …}` with the error's status; 500s are logged with their cause. */
export function sendError(res: ServerResponse, error: ServiceError, log: Logger, method: string, path: string): void {
  const status = error.httpStatus;
  if (status >= 500 && error.code !== 'unavailable' && error.code !== 'resource_exhausted') {
    log.error({ method, path, status, err: error.message }, 'request failed');
  } else {
    log.debug({ method, path, status, err: error.message }, 'request refused');
  }
  if (res.headersSent || res.destroyed) return;
  sendBody(res, status, 'application/json', JSON.stringify({ error: error.message }));
}

/** As express's res.send: text gets `charset=utf-8`, and the length is always given. */
function sendBody(res: ServerResponse, status: number, contentType: string, body: Buffer | string): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.statusCode = status;
  res.setHeader('Content-Type', typeof body === 'string' ? `${contentType}; charset=utf-8` : contentType);
  res.setHeader('Content-Length', bytes.length);
  res.end(bytes);
}
