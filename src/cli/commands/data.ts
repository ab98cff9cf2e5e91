/** `trident data …`: data-set tools. */
import { InvalidArgumentError, type Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { exportFashionLoc } from '../../data/export';
import { FASHIONLOC_SPLITS, type FashionLocSplit } from '../../data/fashionloc';
import { downloadFashionMnist, FASHION_MNIST_MIRRORS } from '../../data/download';
import { FASHION_MNIST_ENV, FASHION_MNIST_REPO_DIR, FASHION_MNIST_SYSTEM_DIR, loadFashionMnistSplit } from '../../data/idx';

function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`expected a number in [0, 1], got "${value}"`);
  return n;
}

function split(value: string): FashionLocSplit {
  if (!(FASHIONLOC_SPLITS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${FASHIONLOC_SPLITS.join(', ')}, got "${value}"`);
  }
  return value as FashionLocSplit;
}

interface FashionLocCommandOptions {
  out: string;
  count: number;
  split: FashionLocSplit;
  seed: number;
  size: number;
  p: number;
  fashionMnist?: string;
}

export function register(program: Command): void {
  const data = program.command('data').description('data-set tools');
  data
    .command('fashionloc')
    .description(
      'render FashionLoc samples (Fashion-MNIST items pasted on cluttered canvases) as PNG files plus annotations.jsonl, ' +
        'in the user-data format that training reads back',
    )
    .requiredOption('--out <dir>', 'output folder (gets images/ and annotations.jsonl)')
    .requiredOption('--count <n>', 'number of samples', integer(1))
    .option('--split <split>', `train, val (last 5 000 training images) or test (Fashion-MNIST's test images)`, split, 'train')
    .option('--seed <n>', 'seed; sample i is a pure function of (seed, split, i)', integer(Number.MIN_SAFE_INTEGER), 0)
    .option('--size <px>', 'canvas side in pixels', integer(8), 64)
    .option('--p <prob>', 'probability that a sample holds an item', probability, 0.8)
    .option('--fashion-mnist <dir>', `folder with the Fashion-MNIST IDX files (default, per split: $${FASHION_MNIST_ENV}, ${FASHION_MNIST_REPO_DIR}, ${FASHION_MNIST_SYSTEM_DIR})`)
    .addHelpText('after', '\nExample:\n  trident data fashionloc --out data/fl-val --count 1000 --split val --seed 7\n')
    .action(async (opts: FashionLocCommandOptions) => {
      const sourceSplit = opts.split === 'test' ? 'test' : 'train';
      const source = { [sourceSplit]: await loadFashionMnistSplit(sourceSplit, opts.fashionMnist) };
      const bar = process.stderr.isTTY
        ? new SingleBar({ stream: process.stderr, format: 'rendering |{bar}| {value}/{total} {eta_formatted}', hideCursor: true }, Presets.shades_classic)
        : undefined;
      bar?.start(opts.count, 0);
      let result;
      try {
        result = await exportFashionLoc(source, {
          out: opts.out,
          count: opts.count,
          split: opts.split,
          seed: opts.seed,
          size: opts.size,
          p: opts.p,
          onProgress: (done) => bar?.update(done),
        });
      } finally {
        bar?.stop();
      }
      process.stdout.write(
        `wrote ${result.written} samples (${result.withObject} with an item, ${result.written - result.withObject} without) and ${result.annotations}\n`,
      );
    });

  data
    .command('download')
    .description(`fetch the Fashion-MNIST files a folder lacks (the repository carries only the test split), each checked by the sha256 of its content`)
    .argument('<dataset>', 'fashion-mnist', (value: string) => {
      if (value !== 'fashion-mnist') throw new InvalidArgumentError(`the only downloadable data set is fashion-mnist, got "${value}"`);
      return value;
    })
    .option('--out <dir>', 'folder to complete', FASHION_MNIST_REPO_DIR)
    .option('--mirror <url-or-dir>', `where to fetch from: a URL or a local folder such as ${FASHION_MNIST_SYSTEM_DIR} (default: ${FASHION_MNIST_MIRRORS.join(', then ')})`)
    .action(async (_dataset: string, opts: { out: string; mirror?: string }) => {
      const files = await downloadFashionMnist({
        out: opts.out,
        mirrors: opts.mirror ? [opts.mirror] : FASHION_MNIST_MIRRORS,
        onProgress: (line) => process.stdout.write(`${line}\n`),
      });
      const fetched = files.filter((f) => f.status !== 'present').length;
      process.stdout.write(`Fashion-MNIST is complete in ${opts.out} (${fetched} of ${files.length} files fetched)\n`);
    });
}
