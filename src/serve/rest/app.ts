/** The REST transport: OIP v2 endpoints, image prediction, repository management and /metrics. */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ServeConfig } from '../config';
import { asTridentError, TridentError } from '../../base/errors';
import type { ServeMetrics } from '../core/metrics';
import { readImages } from './images';
import { HEADER_LENGTH, parseHeaderLength } from './infer-body';
import { answerInfer, callContext, param, requestKey, routeFor, sendEncoded, sendError, type RouteHandler } from './respond';
import type { InferenceService } from '../core/service';
import type { JobManager } from '../../finetune/manager';
import { createFinetuneRouter } from './finetune';
import { createWebRouter } from './web';

const MODEL = '/v2/models/:name{/versions/:version}';

export function createRestApp(service: InferenceService, metrics: ServeMetrics, config: ServeConfig, log: Logger, finetune?: JobManager): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  if (config.corsOrigins.length > 0) app.use(cors(config.corsOrigins));
  app.use((_req, res, next) => {
    if (service.isDraining) res.setHeader('Connection', 'close');
    next();
  });
  const body = express.raw({ type: () => true, limit: config.maxBodyBytes });

  const routeTo = routeFor(service, log);
  const route = (endpoint: string, handler: RouteHandler) => routeTo(endpoint, handler, { model: (req) => param(req, 'name') });

  app.get('/v2/health/live', route('live', async (_req, res) => void res.status(200).json({ live: service.live() })));
  app.get('/v2/health/ready', route('ready', async (_req, res) => {
    const ready = service.ready();
    res.status(ready ? 200 : 400).json({ ready });
  }));
  app.get('/v2', route('server_metadata', async (_req, res) => void res.json(service.serverMetadata())));
  app.get(`${MODEL}/ready`, route('model_ready', async (req, res) => {
    const ready = service.modelReady(param(req, 'name')!, param(req, 'version'));
    res.status(ready ? 200 : 400).json({ name: param(req, 'name'), ready });
  }));
  app.get(MODEL, route('model_metadata', async (req, res) => void res.json(service.modelMetadata(param(req, 'name')!, param(req, 'version')))));

  app.post(`${MODEL}/infer`, body, route('infer', async (req, res) => {
    sendEncoded(res, await answerInfer(service, param(req, 'name')!, param(req, 'version'), bodyOf(req), parseHeaderLength(req.get(HEADER_LENGTH)), req, res));
  }));

  const predict = route('predict', async (req, res) => {
    const upload = await readImages(req.headers, bodyOf(req), config.maxImages);
    const topK = upload.topK ?? queryNumber(req, 'top_k');
    const objectThreshold = upload.objectThreshold ?? queryNumber(req, 'object_threshold');
    const result = await service.predict(
      { model: param(req, 'name'), version: param(req, 'version'), images: upload.images, topK, objectThreshold },
      callContext(req, res),
    );
    const { predictions, ...model } = result;
    res.json(upload.single ? { ...model, ...predictions[0] } : result);
  });
  app.post(`${MODEL}/predict`, body, predict);
  app.post('/v2/predict', body, predict);

  app.post('/v2/repository/index', body, route('repository_index', async (req, res) => {
    const options = bodyOf(req).length > 0 ? parseJsonObject(bodyOf(req)) : {};
    res.json(await service.repositoryIndex(options.ready === true));
  }));
  app.post('/v2/repository/models/:name/load', body, route('repository_load', async (req, res) => {
    await service.loadModel(param(req, 'name')!, requestKey(req));
    res.status(200).json({});
  }));
  app.post('/v2/repository/models/:name/unload', body, route('repository_unload', async (req, res) => {
    await service.unloadModel(param(req, 'name')!, requestKey(req));
    res.status(200).json({});
  }));

  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.text());
  });

  app.use(createWebRouter({ models: config.models, finetune, onServingChanged: (model) => service.registry.load(model), log: (message) => log.info(message), route: routeTo }));
  // Uploads stream through busboy, so no body parser may run before the fine-tuning routes.
  if (finetune) app.use(createFinetuneRouter(finetune, { route: routeTo, heartbeatMs: config.sseHeartbeatMs }));

  app.use((req: Request, res: Response) => sendError(req, res, new TridentError('not_found', `no endpoint ${req.method} ${req.path}`), log));
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => sendError(req, res, bodyError(error), log, 0, true));
  return app;
}

function bodyOf(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

function queryNumber(req: Request, key: string): number | undefined {
  const value = req.query[key];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n)) {
    throw new TridentError('invalid_argument', `query parameter ${key} must be a number, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new TridentError('invalid_argument', `malformed JSON in the request body: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TridentError('invalid_argument', 'the request body must be a JSON object');
  return json as Record<string, unknown>;
}

/**
 * Errors raised before any route runs: by the router (a path segment that does not decode) or by
 * the body parser (size, charset, encoding). Both carry an HTTP status; a 4xx is the client's.
 */
function bodyError(error: unknown): TridentError {
  const type = (error as { type?: string }).type;
  const status = (error as { status?: unknown }).status;
  const message = (error as Error).message;
  if (type === 'entity.too.large') return new TridentError('payload_too_large', `request body too large: ${message}`);
  if (type === 'request.aborted') return new TridentError('cancelled', 'the client aborted the request');
  if (typeof status !== 'number' || status < 400 || status >= 500) return asTridentError(error);
  if (status === 415) return new TridentError('unsupported_media_type', message);
  if (status === 413) return new TridentError('payload_too_large', message);
  if (message.startsWith('Failed to decode param')) return new TridentError('invalid_argument', `malformed percent-encoding in the URL path: ${message}`);
  return new TridentError('invalid_argument', `could not read the request body: ${message}`);
}

function cors(origins: string[]) {
  const any = origins.includes('*');
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.get('origin');
    if (origin && (any || origins.includes(origin))) {
      res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
      if (!any) res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', 'Inference-Header-Content-Length');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-API-Key, Inference-Header-Content-Length');
        res.setHeader('Access-Control-Max-Age', '600');
        return void res.status(204).end();
      }
    }
    next();
  };
}
