/**
 * A small stand-in for Fashion-MNIST's training split, for tests that train: the first `count`
 * images of the committed test split, written as training-split IDX files into `dir`. Tests point
 * --fashion-mnist / `data.dir` at it explicitly, so they never need the downloaded training split.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { encodeIdx, FASHION_MNIST_FILES, FASHION_MNIST_REPO_DIR, FASHION_MNIST_SIDE, loadFashionMnistSplit } from '../data/idx';

export async function writeTrainingFixture(dir: string, count = 1200): Promise<string> {
  const test = await loadFashionMnistSplit('test', FASHION_MNIST_REPO_DIR);
  if (count > test.count) throw new Error(`writeTrainingFixture: the test split has ${test.count} images, asked for ${count}`);
  const side = FASHION_MNIST_SIDE;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, FASHION_MNIST_FILES.train.images), encodeIdx([count, side, side], test.images.subarray(0, count * side * side)));
  await writeFile(path.join(dir, FASHION_MNIST_FILES.train.labels), encodeIdx([count], test.labels.subarray(0, count)));
  return dir;
}
