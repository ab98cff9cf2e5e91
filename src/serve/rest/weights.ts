/**
 * POST /v2/models/:name/weights — a checkpoint trained elsewhere becomes a new version
 * (finetune/weights-upload.ts). multipart/form-data with:
 *
 *   checkpoint   the Trident checkpoint file (safetensors)
 *   sha256       its SHA-256, hex
 *   held_out     optional JSON {"samples": N, "candidate": Metrics, "serving": Metrics}: the
 *                client's evaluation of both on data it keeps
 *   force        optional "true": promote even if the gate says worse
 *
 * Needs a fine-tune key. Answers 201 with the version, the evaluation and the gate's decision;
 * errors are {"error": "…"} with 400/401/403/404/409/413/503.
 */
import { TridentError } from '../../base/errors';
import path from 'node:path';
import busboy from 'busboy';
import express, { type Request } from 'express';
import { readManifest } from '../../artifacts/manifest';
import { servingVersion } from '../../artifacts/repository';
import type { JobManager } from '../../finetune/manager';
import { maxWeightsBytes, uploadWeights, type WeightsUploadOptions } from '../../finetune/weights-upload';
import { layout } from '../../model/params';
import { checkModelName } from '../../runtime/model-registry';
import { elementCount } from '../../runtime/tensor';
import { parseBoolean, requestKey, type Route } from './respond';

interface WeightsForm {
  checkpoint?: Buffer;
  fields: Map<string, string>;
}

export function createWeightsRouter(manager: JobManager, route: Route, options: WeightsUploadOptions): express.Router {
  const router = express.Router();
  router.post(
    '/v2/models/:name/weights',
    route('weights_upload', async (req, res) => {
      const key = requestKey(req);
      // Refuse before reading the body: no key, no such model, or no form.
      manager.authorize(key, 'weights upload');
      const limit = await uploadLimit(options.models, String(req.params.name));
      if (!req.is('multipart/form-data')) throw new TridentError('invalid_argument', 'send multipart/form-data with the "checkpoint" file and its "sha256"');
      const form = await readForm(req, limit);
      if (!form.checkpoint) throw new TridentError('invalid_argument', 'the form has no "checkpoint" file');
      let heldOut: unknown;
      const given = form.fields.get('held_out');
      if (given !== undefined && given !== '') {
        try {
          heldOut = JSON.parse(given);
        } catch (e) {
          throw new TridentError('invalid_argument', `form field "held_out" is not JSON: ${(e as Error).message}`);
        }
      }
      const force = parseBoolean(form.fields.get('force'), 'force');
      const result = await uploadWeights(
        manager,
        { model: String(req.params.name), key, checkpoint: form.checkpoint, sha256: form.fields.get('sha256'), heldOut, force },
        options,
      );
      res.status(201).json(result);
    }, { model: (req) => String(req.params.name) }),
  );
  return router;
}

async function uploadLimit(models: string, name: string): Promise<number> {
  const model = checkModelName(name);
  const dir = path.join(models, model);
  const version = await servingVersion(dir);
  if (version === undefined) throw new TridentError('not_found', `no model "${model}" in the repository`);
  const manifest = await readManifest(path.join(dir, String(version)));
  const count = layout(manifest.spec).params.reduce((sum, p) => sum + elementCount(p.shape), 0);
  return maxWeightsBytes(count);
}

function readForm(req: Request, limit: number): Promise<WeightsForm> {
  return new Promise((resolve, reject) => {
    const form: WeightsForm = { fields: new Map() };
    let failed = false;
    let parser: busboy.Busboy;
    const fail = (error: TridentError) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      reject(error);
    };
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fields: 8, fieldSize: 256 * 1024, fileSize: limit } });
    } catch (e) {
      return reject(new TridentError('invalid_argument', `malformed multipart request: ${(e as Error).message}`));
    }
    parser.on('file', (field, stream) => {
      // A broken form errors the part's stream as well as the parser; the parser's 'error' reports it.
      stream.on('error', () => {});
      if (field !== 'checkpoint') {
        stream.resume();
        return fail(new TridentError('invalid_argument', `unexpected file part "${field}"; send the weights as "checkpoint"`));
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('limit', () => fail(new TridentError('payload_too_large', `the checkpoint is larger than the ${limit} bytes this model's weights can take`)));
      stream.on('end', () => {
        if (!failed) form.checkpoint = Buffer.concat(chunks);
      });
    });
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new TridentError('payload_too_large', `form field "${name}" is too long`));
      form.fields.set(name, value);
    });
    for (const event of ['filesLimit', 'fieldsLimit', 'partsLimit'] as const) parser.on(event, () => fail(new TridentError('payload_too_large', 'too many parts in the form')));
    parser.on('error', (e: Error) => fail(new TridentError('invalid_argument', `malformed multipart request: ${e.message}`)));
    req.on('aborted', () => fail(new TridentError('invalid_argument', 'the client aborted the upload')));
    parser.on('close', () => {
      if (!failed) resolve(form);
    });
    req.pipe(parser);
  });
}
