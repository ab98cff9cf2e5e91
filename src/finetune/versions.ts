/** A model's versions as the fine-tune API shows them, and moving "latest" back (or forward) by hand. */
import { readManifest } from '../artifacts/manifest';
import { listVersions, moveServingPointer, readServingPointer, resolveLatest, servingVersion } from '../artifacts/repository';
import { TridentError } from '../base/errors';
import type { JobBoard } from './board';
import type { ModelVersions, VersionInfo } from './record';
import { versionDir } from './promotion';

export class VersionAdmin {
  constructor(
    private readonly board: JobBoard,
    private readonly onServingChanged?: (model: string, latest: number) => Promise<void> | void,
  ) {}

  async list(model: string): Promise<ModelVersions> {
    const name = this.board.checkName(model);
    const modelDir = this.board.modelDir(name);
    const available = await listVersions(modelDir);
    if (available.length === 0) throw new TridentError('not_found', `no model "${name}" in the repository`);
    const pointer = await readServingPointer(modelDir);
    const latest = resolveLatest(pointer, available)!;
    const versions: VersionInfo[] = [];
    for (const version of available) {
      try {
        const manifest = await readManifest(versionDir(modelDir, version));
        versions.push({ version, latest: version === latest, createdAt: manifest.createdAt, metrics: manifest.metrics, lineage: manifest.lineage });
      } catch (e) {
        versions.push({ version, latest: version === latest, error: (e as Error).message });
      }
    }
    return { model: name, latest, versions, history: pointer?.history ?? [] };
  }

  /** Sets "latest" to an existing, intact version (any, older or newer). */
  async rollback(model: string, version: number): Promise<{ model: string; latest: number; previous: number }> {
    const board = this.board;
    board.checkOpen();
    const name = board.checkName(model);
    if (!Number.isInteger(version) || version < 1) throw new TridentError('invalid_argument', `version must be a positive integer, got ${version}`);
    const modelDir = board.modelDir(name);
    return board.locks.run(name, async () => {
      const available = await listVersions(modelDir);
      if (available.length === 0) throw new TridentError('not_found', `no model "${name}" in the repository`);
      if (!available.includes(version)) throw new TridentError('not_found', `model "${name}" has no version ${version} (versions: ${available.join(', ')})`);
      try {
        await readManifest(versionDir(modelDir, version), { verify: true });
      } catch (e) {
        throw new TridentError('invalid_argument', `version ${version} of "${name}" is damaged: ${(e as Error).message}`);
      }
      const previous = (await servingVersion(modelDir, available))!;
      if (previous === version) return { model: name, latest: version, previous };
      await moveServingPointer(modelDir, version, { reason: 'rollback' });
      try {
        await this.onServingChanged?.(name, version);
      } catch (e) {
        await moveServingPointer(modelDir, previous, { reason: 'repaired' });
        throw new TridentError('unavailable', `the server could not serve version ${version}: ${(e as Error).message}; "latest" stays ${previous}`);
      }
      board.log(`model ${name}: latest set back from version ${previous} to ${version}`);
      return { model: name, latest: version, previous };
    });
  }

  /** Runs `work` while no promotion or rollback of `model` runs (weights uploads promote through this). */
  exclusive<T>(model: string, work: () => Promise<T>): Promise<T> {
    return this.board.locks.run(this.board.checkName(model), work);
  }
}
