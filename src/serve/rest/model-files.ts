/**
 * A version's files, for clients that run the model themselves (the web app):
 *
 *   GET /v2/models/:name/versions/:version/files/:file     version: a number or "latest"
 *
 * `file` is manifest.json, infer.onnx, checkpoint.safetensors, train_step.onnx or eval.onnx.
 * A version exported for serving only has no training graphs; they are built from its manifest
 * (spec and optimizer) on first request, kept in memory, and listed with their checksums in the
 * manifest this route returns, which also says which version "latest" was.
 */
import path from 'node:path';
import express from 'express';
import { FILES } from '../../artifacts/export';
import { sha256 } from '../../artifacts/files';
import { buildEvalGraph, buildTrainStepGraph, type BuiltGraph } from '../../artifacts/graphs';
import { readManifest, type Manifest } from '../../artifacts/manifest';
import type { ServedManifest } from '../../artifacts/manifest-schema';
import { isVersionName, servingVersion } from '../../artifacts/repository';
import { DEFAULT_OPTIMIZER, manifestOptimizer } from '../../model/optimizers';
import { encodeModel } from '../../onnx/serialize';
import { checkModelName } from '../../runtime/model-registry';
import { TridentError } from '../../base/errors';
import { quote } from '../../base/quote';
import type { Route } from './respond';
import { ISOLATION_HEADERS } from './web-app';

const SERVED: readonly string[] = [FILES.manifest, FILES.infer, FILES.checkpoint, FILES.trainStep, FILES.eval];
const GENERATED: Readonly<Record<string, { key: string; build: (m: Manifest) => BuiltGraph }>> = Object.freeze({
  [FILES.trainStep]: { key: 'train_step', build: (m: Manifest) => buildTrainStepGraph(m.spec, { optimizer: DEFAULT_OPTIMIZER[manifestOptimizer(m)] }) },
  [FILES.eval]: { key: 'eval', build: (m: Manifest) => buildEvalGraph(m.spec) },
});
const CACHED_VERSIONS = 8;

interface Prepared {
  manifest: ServedManifest;
  generated: Map<string, Uint8Array>;
}

export function createModelFilesRouter(models: string, route: Route): express.Router {
  const router = express.Router();
  const cache = new Map<string, Prepared>();

  const prepare = async (model: string, dir: string, version: number): Promise<Prepared> => {
    const manifest = await readManifest(dir);
    const key = `${dir}\n${manifest.createdAt}\n${manifest.files[FILES.checkpoint]?.sha256}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const served: ServedManifest = { ...manifest, graphs: { ...manifest.graphs }, files: { ...manifest.files }, model, version };
    const generated = new Map<string, Uint8Array>();
    for (const [file, { key: graphKey, build }] of Object.entries(GENERATED)) {
      if (manifest.files[file]) continue;
      const graph = build(manifest);
      const bytes = encodeModel(graph.model);
      generated.set(file, bytes);
      served.graphs[graphKey] = { file, inputs: graph.inputs, outputs: graph.outputs };
      served.files[file] = { sha256: sha256(bytes), bytes: bytes.length };
    }
    const prepared = { manifest: served, generated };
    cache.set(key, prepared);
    while (cache.size > CACHED_VERSIONS) cache.delete(cache.keys().next().value!);
    return prepared;
  };

  router.get(
    '/v2/models/:name/versions/:version/files/:file',
    route('model_file', async (req, res) => {
      const name = checkModelName(String(req.params.name));
      const file = String(req.params.file);
      if (!SERVED.includes(file)) throw new TridentError('not_found', `no file ${quote(file)}; the files are ${SERVED.join(', ')}`);
      const modelDir = path.join(models, name);
      const asked = String(req.params.version);
      const version = asked === 'latest' ? await servingVersion(modelDir) : isVersionName(asked) ? Number(asked) : undefined;
      if (asked !== 'latest' && version === undefined) throw new TridentError('invalid_argument', `invalid version ${quote(asked)}: a positive integer or "latest"`);
      if (version === undefined) throw new TridentError('not_found', `no model "${name}"`);
      const dir = path.join(modelDir, String(version));
      let prepared: Prepared;
      try {
        prepared = await prepare(name, dir, version);
      } catch {
        throw new TridentError('not_found', `model "${name}" has no version ${version}`);
      }
      // A version's files never change; "latest" may point elsewhere tomorrow.
      const cacheControl = asked === 'latest' ? 'no-cache' : 'public, max-age=3600';
      res.set({ ...ISOLATION_HEADERS, 'Cache-Control': cacheControl });
      if (file === FILES.manifest) return void res.json(prepared.manifest);
      const generated = prepared.generated.get(file);
      res.type('application/octet-stream');
      if (generated) return void res.send(Buffer.from(generated.buffer, generated.byteOffset, generated.byteLength));
      if (!prepared.manifest.files[file]) throw new TridentError('not_found', `version ${version} of "${name}" has no ${file}`);
      await new Promise<void>((resolve, reject) =>
        res.sendFile(path.resolve(dir, file), (error) => (error ? reject(new TridentError('not_found', `version ${version} of "${name}" has no readable ${file}`)) : resolve())),
      );
    }, { model: (req) => String(req.params.name) }),
  );
  return router;
}
