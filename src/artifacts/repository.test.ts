import { mkdirSync, mkdtempSync, promises as fs, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  commitStaging,
  listVersions,
  moveServingPointer,
  nextVersion,
  readServingPointer,
  removeStaleStaging,
  removeTemporaryFiles,
  resolveLatest,
  servingOrder,
  servingVersion,
  SERVING_FILE,
  stagingDir,
  writeServingPointer,
} from './repository';

let modelDir: string;
beforeEach(() => {
  modelDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'trident-repo-')), 'm');
  for (const name of ['1', '2', '10', '.staging-ft-a', '.hidden', 'notes', '0', '01', 'v3']) mkdirSync(path.join(modelDir, name), { recursive: true });
  writeFileSync(path.join(modelDir, '7'), 'a file, not a version');
});
afterEach(() => rmSync(path.dirname(modelDir), { recursive: true, force: true }));

describe('model repository layout', () => {
  it('lists numeric version folders only, ascending, ignoring staging, hidden, zero-padded and plain files', async () => {
    expect(await listVersions(modelDir)).toEqual([1, 2, 10]);
    expect(await listVersions(path.join(modelDir, 'missing'))).toEqual([]);
  });

  it('without a pointer the highest version is latest, and the next version follows it', async () => {
    expect(await readServingPointer(modelDir)).toBeUndefined();
    expect(await servingVersion(modelDir)).toBe(10);
    expect(await nextVersion(modelDir)).toBe(11);
  });

  it('the pointer decides latest; a pointer to a missing version falls back through its history, then to the highest', async () => {
    await moveServingPointer(modelDir, 2, { reason: 'promoted', jobId: 'ft-x' });
    expect(await servingVersion(modelDir)).toBe(2);
    const pointer = (await readServingPointer(modelDir))!;
    expect(pointer).toMatchObject({ latest: 2, history: [{ version: 2, reason: 'promoted', jobId: 'ft-x' }] });
    expect(resolveLatest({ latest: 5, history: [{ version: 1, at: '', reason: 'pinned' }, { version: 5, at: '', reason: 'promoted' }] }, [1, 2])).toBe(1);
    expect(resolveLatest({ latest: 5, history: [] }, [1, 2])).toBe(2);
    expect(resolveLatest(undefined, [])).toBeUndefined();
  });

  it('never reuses a version number the pointer has named, even if its folder is gone', async () => {
    await writeServingPointer(modelDir, { latest: 2, history: [{ version: 12, at: '', reason: 'promoted' }] });
    expect(await nextVersion(modelDir)).toBe(13);
  });

  it('writes the pointer atomically and refuses one that does not parse', async () => {
    await writeServingPointer(modelDir, { latest: 1, history: [] });
    expect(readdirSync(modelDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    writeFileSync(path.join(modelDir, SERVING_FILE), '{"latest": "two"}');
    await expect(readServingPointer(modelDir)).rejects.toThrow(/serving\.json: invalid serving pointer: latest/);
    writeFileSync(path.join(modelDir, SERVING_FILE), '{"lat');
    await expect(servingVersion(modelDir)).rejects.toThrow(/serving\.json: not valid JSON/);
  });

  it('servingOrder moves the serving version last, so "last = latest" code follows the pointer', async () => {
    expect(await servingOrder(modelDir, [1, 2, 10])).toEqual([1, 2, 10]);
    await moveServingPointer(modelDir, 2, { reason: 'rollback' });
    expect(await servingOrder(modelDir, [1, 2, 10])).toEqual([1, 10, 2]);
    expect(await servingOrder(modelDir, [])).toEqual([]);
  });

  it('commits a staging folder by renaming it, and refuses to replace an existing version', async () => {
    const staging = stagingDir(modelDir, 'ft-b');
    mkdirSync(staging);
    writeFileSync(path.join(staging, 'manifest.json'), '{}');
    await expect(commitStaging(staging, modelDir, 2)).rejects.toMatchObject({ code: 'EEXIST' });
    const target = await commitStaging(staging, modelDir, 11);
    expect(target).toBe(path.join(modelDir, '11'));
    expect(await fs.readFile(path.join(target, 'manifest.json'), 'utf8')).toBe('{}');
    expect(await listVersions(modelDir)).toEqual([1, 2, 10, 11]);
  });

  it('removes stale staging folders (except those kept) and leftovers of interrupted writes', async () => {
    mkdirSync(stagingDir(modelDir, 'ft-keep'));
    writeFileSync(path.join(modelDir, `${SERVING_FILE}.tmp-123-abcd1234`), 'half');
    expect(await removeStaleStaging(modelDir, new Set(['ft-keep']))).toEqual(['.staging-ft-a']);
    expect(await removeTemporaryFiles(modelDir)).toEqual([`${SERVING_FILE}.tmp-123-abcd1234`]);
    expect(readdirSync(modelDir).sort()).toEqual(['.hidden', '.staging-ft-keep', '0', '01', '1', '10', '2', '7', 'notes', 'v3']);
  });
});
