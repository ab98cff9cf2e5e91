/** What every REST endpoint shares: the route wrapper, answers and errors, and running an infer body. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { asTridentError, TridentError } from '../../base/errors';
import { presentedKey } from '../../base/keys';
import { httpStatusOf, isServerFault } from '../core/wire-errors';
import { encodeInferResponse, parseInferBody, type EncodedResponse } from './infer-body';
import type { CallContext, InferenceService } from '../core/service';

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

/**
 * Answers `{"error": …}` (plus the error's details, e.g. `job_id`) with the error's status. A body
 * still arriving is read and dropped, up to `drainLimit` bytes, so that the client gets the answer
 * rather than a reset; past that the connection closes. Faults of service calls were reported by
 * the call; `outsideCall` says this one was not (the router or body parser failed).
 */
export function sendError(req: IncomingMessage, res: ServerResponse, thrown: unknown, log: Logger, drainLimit = 0, outsideCall = false): void {
  const error = asTridentError(thrown);
  const status = httpStatusOf(error);
  const path = (req.url ?? '').split('?')[0];
  if (outsideCall && isServerFault(error)) log.error({ method: req.method, path, status, err: error.message }, 'request failed');
  else log.debug({ method: req.method, path, status, err: error.message }, 'request refused');
  if (!req.complete) discardBody(req, res, drainLimit);
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.end();
    return;
  }
  sendBody(res, status, 'application/json', JSON.stringify({ error: error.message, ...error.details }));
}

function discardBody(req: IncomingMessage, res: ServerResponse, limit: number): void {
  if (limit <= 0) {
    if (!res.headersSent) res.setHeader('Connection', 'close');
    req.resume();
    return;
  }
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limit) req.destroy();
  });
  req.resume();
}

/** A long-lived answer (an event stream) that runs after its call has ended, outside the in-flight count that drain waits on. */
export type Continuation = () => Promise<void>;

/** Handles one request; may return a continuation for what streams after the request's call. */
export type RouteHandler = (req: Request, res: Response) => Promise<void | Continuation> | void;

export interface RouteOptions {
  /** The model the request names, for metrics. */
  model?: (req: Request) => string | undefined;
  /** A refused request's body is read and dropped up to this many bytes (uploads); default: none, the connection closes. */
  drainLimit?: number;
}

export type Route = (endpoint: string, handler: RouteHandler, options?: RouteOptions) => (req: Request, res: Response) => Promise<void>;

/**
 * The one way a REST endpoint runs: as a service call (metrics, in-flight count, drain), its
 * failures answered by sendError.
 */
export function routeFor(service: InferenceService, log: Logger): Route {
  return (endpoint, handler, options = {}) =>
    async (req, res) => {
      let continuation: void | Continuation;
      try {
        continuation = await service.call({ protocol: 'rest', endpoint, model: options.model?.(req) }, () => handler(req, res));
      } catch (e) {
        return sendError(req, res, e, log, options.drainLimit);
      }
      if (!continuation) return;
      try {
        await continuation();
      } catch (e) {
        sendError(req, res, e, log, 0, true); // after the call: reportFault never saw it
      }
    };
}

/** The API key a request presents, from `Authorization: Bearer` or `X-API-Key`. */
export function requestKey(req: Request): string | undefined {
  return presentedKey(req.get('authorization'), req.get('x-api-key'));
}

/** A boolean request field: absent, "", "false" or "0" is false; "true" or "1" is true. */
export function parseBoolean(value: unknown, name: string): boolean {
  if (value === undefined || value === null || value === false || value === 'false' || value === '0' || value === '') return false;
  if (value === true || value === 'true' || value === '1') return true;
  throw new TridentError('invalid_argument', `"${name}" must be true or false`);
}

/** A route parameter, undefined when absent or empty. */
export function param(req: Request, key: string): string | undefined {
  const value = (req.params as Record<string, string | undefined>)[key];
  return value === undefined || value === '' ? undefined : value;
}

/** As express's res.send: text gets `charset=utf-8`, and the length is always given. */
function sendBody(res: ServerResponse, status: number, contentType: string, body: Buffer | string): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.statusCode = status;
  res.setHeader('Content-Type', typeof body === 'string' ? `${contentType}; charset=utf-8` : contentType);
  res.setHeader('Content-Length', bytes.length);
  res.end(bytes);
}
