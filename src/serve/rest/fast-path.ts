/**
 * POST /v2/models/{m}[/versions/{v}]/infer served straight from node:http, ahead of express: the
 * hottest endpoint skips the router, the body parser and their per-request objects. Requests it does
 * not take (compressed bodies, CORS, any other path or spelling) go to express, which answers them
 * the same way through the same functions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ServeConfig } from '../config';
import { TridentError } from '../../base/errors';
import { HEADER_LENGTH, parseHeaderLength } from './infer-body';
import { answerInfer, sendEncoded, sendError } from './respond';
import type { InferenceService } from '../core/service';

const INFER_PATH = /^\/v2\/models\/([^/?%]+)(?:\/versions\/([^/?%]+))?\/infer(?:\?|$)/;
const ALIGNMENT = 8;

export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Returns a handler that answers the requests it takes and returns false for the rest. */
export function fastInferPath(service: InferenceService, config: ServeConfig, log: Logger): FastPath {
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const match = INFER_PATH.exec(req.url ?? '');
    if (!match) return false;
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    if (config.corsOrigins.length > 0 && req.headers.origin !== undefined) return false;
    if (service.isDraining) res.setHeader('Connection', 'close');
    const [, name, version] = match;
    service
      .call({ protocol: 'rest', endpoint: 'infer', model: name }, async () => {
        const headerLength = parseHeaderLength(req.headers[HEADER_LENGTH]);
        const body = await readBody(req, config.maxBodyBytes, headerLength ?? 0);
        sendEncoded(res, await answerInfer(service, name, version, body, headerLength, req, res));
      })
      .catch((e: unknown) => sendError(req, res, e, log))
      .catch(() => res.destroy());
    return true;
  };
}

/**
 * Reads the whole body into one buffer placed so that byte `alignAt` (where Triton's binary tensors
 * start) is 8-byte aligned: tensors are then read in place rather than copied.
 */
export function readBody(req: IncomingMessage, limit: number, alignAt: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new TridentError('payload_too_large', `request body too large: ${declared} bytes; the limit is ${limit}`));
  }
  const pad = (ALIGNMENT - (alignAt % ALIGNMENT)) % ALIGNMENT;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) {
        req.off('data', onData).resume();
        return reject(new TridentError('payload_too_large', `request body too large: more than ${limit} bytes; the limit is ${limit}`));
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      try {
        const body = Buffer.from(new ArrayBuffer(received + pad), pad, received);
        let offset = 0;
        for (const c of chunks) offset += c.copy(body, offset);
        resolve(body);
      } catch (e) {
        reject(e);
      }
    });
    req.once('error', () => reject(new TridentError('cancelled', 'the client aborted the request')));
    req.once('aborted', () => reject(new TridentError('cancelled', 'the client aborted the request')));
  });
}
