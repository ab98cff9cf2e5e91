/**
 * The fine-tune REST endpoints, as an express Router to mount on the server's app (before its
 * catch-all 404):
 *
 *   POST /v2/models/:name/finetune        multipart (annotations.jsonl + images [+ params, force])
 *                                         or JSON {"data": "<allowed folder>", "params": {…}, "force": bool}
 *   GET  /v2/finetune/jobs[?model=&state=]
 *   GET  /v2/finetune/jobs/:id
 *   GET  /v2/finetune/jobs/:id/events     Server-Sent Events: snapshot, state, ready, step, epoch,
 *                                         evaluation, decision, warning, end
 *   POST /v2/finetune/jobs/:id/cancel
 *   GET  /v2/models/:name/versions
 *   POST /v2/models/:name/rollback        {"version": N}
 *
 * Creating, cancelling and rolling back need a fine-tune API key. Errors are {"error": "…"}
 * (plus "job_id" on 409), with 400/401/403/404/409/413/503; 500 only for server faults.
 */
import { TridentError } from '../../base/errors';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import express, { type Request, type Response } from 'express';
import type { JobManager, Reservation } from '../../finetune/manager';
import type { JobState } from '../../finetune/record';
import { eventPayload } from '../core/job-events';
import { param, parseBoolean, requestKey, type Route, type RouteHandler } from './respond';
import { formatSseEvent } from './sse';

export interface FinetuneRestOptions {
  /** The server's route wrapper: every endpoint runs as a service call. */
  route: Route;
  /** SSE comment lines that keep idle proxies from closing the stream. */
  heartbeatMs?: number;
}

/** Form fields of a multipart upload that are not hyper-parameters. */
const CONTROL_FIELDS = new Set(['params', 'force', 'annotations']);
const JSON_LIMIT = '1mb';
const STATES: readonly JobState[] = ['queued', 'running', 'evaluating', 'promoting', 'succeeded', 'failed', 'cancelled'];

export function createFinetuneRouter(manager: JobManager, options: FinetuneRestOptions): express.Router {
  const router = express.Router();
  const json = express.json({ limit: JSON_LIMIT, type: () => true });
  const model = (req: Request) => param(req, 'name');
  // A refused upload may still be arriving: it is read and dropped (up to the upload limit), so that the client gets the answer.
  const route = (endpoint: string, handler: RouteHandler) => options.route(endpoint, handler, { model, drainLimit: manager.config.limits.maxUploadBytes });

  router.post(
    '/v2/models/:name/finetune',
    route('finetune_create', async (req, res) => {
      manager.authorize(requestKey(req), 'fine-tune job creation');
      const model = String(req.params.name);
      let job;
      if (req.is('multipart/form-data')) {
        const reservation = await manager.reserve(model);
        let form: MultipartForm;
        try {
          form = await readMultipart(req, reservation);
        } catch (e) {
          await reservation.release();
          throw e;
        }
        job = await manager.submit(reservation, form.annotations, { params: form.params, force: form.force });
      } else if (req.is('application/json')) {
        const body = await parseJson(req, res, json);
        if (typeof body.data !== 'string') {
          throw new TridentError('invalid_argument', 'give "data": a data folder the server allows, or upload the files as multipart/form-data');
        }
        job = await manager.createFromFolder(model, body.data, { params: body.params, force: parseBoolean(body.force, 'force') });
      } else {
        throw new TridentError('invalid_argument', 'send multipart/form-data (annotations.jsonl and the images) or application/json ({"data": "<folder>"})');
      }
      res.status(201).location(`/v2/finetune/jobs/${job.id}`).json(job);
    }),
  );

  router.get(
    '/v2/finetune/jobs',
    route('finetune_list', async (req, res) => {
      const model = queryString(req, 'model');
      const state = queryString(req, 'state');
      if (state !== undefined && !STATES.includes(state as JobState)) throw new TridentError('invalid_argument', `state must be one of ${STATES.join(', ')}`);
      res.json({ jobs: await manager.list({ model, state: state as JobState | undefined }) });
    }),
  );

  router.get('/v2/finetune/jobs/:id', route('finetune_get', async (req, res) => void res.json(await manager.get(String(req.params.id)))));

  router.get(
    '/v2/finetune/jobs/:id/events',
    route('finetune_events', async (req, res) => {
      const events = await manager.watch(String(req.params.id));
      res.status(200).set({
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();
      // The stream itself is no request in flight: a drain does not wait for watchers.
      return async () => {
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), options.heartbeatMs ?? 15_000);
        res.once('close', () => void events.return!());
        let sequence = 0;
        try {
          for await (const event of events) res.write(formatSseEvent(event.type, ++sequence, eventPayload(event)));
        } finally {
          clearInterval(heartbeat);
          res.end();
        }
      };
    }),
  );

  router.post(
    '/v2/finetune/jobs/:id/cancel',
    route('finetune_cancel', async (req, res) => {
      manager.authorize(requestKey(req), 'fine-tune job cancellation');
      res.json(await manager.cancel(String(req.params.id)));
    }),
  );

  router.get('/v2/models/:name/versions', route('versions', async (req, res) => void res.json(await manager.listVersions(String(req.params.name)))));

  router.post(
    '/v2/models/:name/rollback',
    route('rollback', async (req, res) => {
      manager.authorize(requestKey(req), 'rollback');
      const body = await parseJson(req, res, json);
      const version = typeof body.version === 'string' && /^\d+$/.test(body.version) ? Number(body.version) : body.version;
      if (typeof version !== 'number') throw new TridentError('invalid_argument', 'give the version to serve as latest: {"version": N}');
      res.json(await manager.rollback(String(req.params.name), version));
    }),
  );

  return router;
}

interface MultipartForm {
  annotations?: string;
  params: Record<string, unknown>;
  force: boolean;
}

/**
 * Streams the file parts into the reservation's upload folder and collects the form fields.
 * Files keep their (sanitised) paths, so an annotation line's "images/001.png" finds its image.
 */
function readMultipart(req: IncomingMessage, reservation: Reservation): Promise<MultipartForm> {
  return new Promise((resolve, reject) => {
    const fields = new Map<string, string>();
    const writes: Promise<string>[] = [];
    let annotationPart: string | undefined;
    let failed = false;
    let parser: busboy.Busboy;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      // Read and discard the rest, so the client gets to see the answer.
      req.resume();
      reject(error);
    };
    try {
      parser = busboy({ headers: req.headers, preservePath: true, limits: { fields: 64, fieldSize: 64 * 1024, parts: 100_000 } });
    } catch (e) {
      return reject(new TridentError('invalid_argument', `malformed multipart request: ${(e as Error).message}`));
    }
    parser.on('file', (field, stream, info) => {
      // A broken form errors the part's stream as well as the parser; the parser's 'error' reports it.
      stream.on('error', () => {});
      if (failed) return void stream.resume();
      if (!info.filename) {
        stream.resume();
        return fail(new TridentError('invalid_argument', `form part "${field}" is a file without a file name`));
      }
      const write = reservation.uploads.writeStream(info.filename, stream);
      if (field === 'annotations') annotationPart = info.filename;
      write.catch((e: unknown) => {
        stream.resume();
        fail(e);
      });
      writes.push(write);
    });
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new TridentError('payload_too_large', `form field "${name}" is too long`));
      fields.set(name, value);
    });
    for (const limit of ['partsLimit', 'fieldsLimit'] as const) parser.on(limit, () => fail(new TridentError('payload_too_large', 'too many parts in the form')));
    parser.on('error', (e: Error) => fail(new TridentError('invalid_argument', `malformed multipart request: ${e.message}`)));
    req.on('aborted', () => fail(new TridentError('invalid_argument', 'the client aborted the upload')));
    parser.on('close', () => {
      if (failed) return;
      Promise.all(writes).then((names) => {
        if (failed) return;
        if (names.length === 0) return fail(new TridentError('invalid_argument', 'the upload is empty: send annotations.jsonl and the images it names'));
        try {
          resolve(formOf(fields, names, annotationPart));
        } catch (e) {
          fail(e);
        }
      }, fail);
    });
    req.pipe(parser);
  });
}

function formOf(fields: Map<string, string>, files: string[], annotationPart: string | undefined): MultipartForm {
  let params: Record<string, unknown> = {};
  const given = fields.get('params');
  if (given !== undefined) {
    try {
      params = JSON.parse(given) as Record<string, unknown>;
    } catch (e) {
      throw new TridentError('invalid_argument', `form field "params" is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new TridentError('invalid_argument', 'form field "params" must be a JSON object');
  }
  for (const [name, value] of fields) if (!CONTROL_FIELDS.has(name)) params[name] = value;
  const jsonlFiles = files.filter((f) => f.endsWith('.jsonl'));
  const annotations = fields.get('annotations') ?? annotationPart ?? (files.includes('annotations.jsonl') ? 'annotations.jsonl' : jsonlFiles.length === 1 ? jsonlFiles[0] : undefined);
  return { annotations, params, force: parseBoolean(fields.get('force'), 'force') };
}

function parseJson(req: Request, res: Response, parser: express.RequestHandler): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    parser(req, res, (error?: unknown) => {
      if (error) {
        const type = (error as { type?: string }).type;
        const message = (error as Error).message;
        return reject(new TridentError(type === 'entity.too.large' ? 'payload_too_large' : 'invalid_argument', `could not read the JSON body: ${message}`));
      }
      const body: unknown = req.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return reject(new TridentError('invalid_argument', 'the request body must be a JSON object'));
      resolve(body as Record<string, unknown>);
    }),
  );
}

function queryString(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new TridentError('invalid_argument', `query parameter ${name} must be given once`);
  return value;
}
