/** The architecture spec: input, shared trunk, shared fully-connected layers, and the three heads. */
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const InputSpecSchema = z.object({
  channels: z.union([z.literal(1), z.literal(3)]),
  height: positiveInt,
  width: positiveInt,
  /** Per-channel normalisation applied to pixel/255: (v - mean) / std. */
  mean: z.array(z.number()).min(1),
  std: z.array(z.number().positive()).min(1),
});

/** Conv2d, then BatchNorm2d (the conv then has no bias), ReLU and max-pool, each optional. */
export const ConvBlockSchema = z.object({
  type: z.literal('conv'),
  outChannels: positiveInt,
  kernel: positiveInt,
  stride: positiveInt.default(1),
  padding: z.number().int().nonnegative().default(0),
  batchNorm: z.boolean().default(false),
  relu: z.boolean().default(true),
  /** Max-pool window (and stride) after the activation; omit for none. */
  pool: positiveInt.optional(),
});

/**
 * torchvision's BasicBlock: conv 3×3 (stride) → BN → ReLU → conv 3×3 → BN, plus the shortcut (identity,
 * or conv 1×1 (stride) → BN where the stride or the channel count changes), then ReLU. Without
 * batchNorm the convolutions carry biases instead.
 */
export const ResidualBlockSchema = z.object({
  type: z.literal('residual'),
  outChannels: positiveInt,
  stride: positiveInt.default(1),
  batchNorm: z.boolean().default(true),
});

/** AdaptiveAvgPool2d(1): each channel averaged over the feature map; only as the trunk's last block. */
export const GlobalAvgPoolSchema = z.object({ type: z.literal('globalAvgPool') });

/** A trunk block; a block without `type` is a conv block (the only kind specs had before). */
export const TrunkBlockSchema = z.preprocess(
  (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('type' in v) ? { ...v, type: 'conv' } : v),
  z.discriminatedUnion('type', [ConvBlockSchema, ResidualBlockSchema, GlobalAvgPoolSchema]),
);

export const ModelSpecSchema = z
  .object({
    name: z.string().min(1),
    input: InputSpecSchema,
    trunk: z.array(TrunkBlockSchema).min(1),
    /** Widths of the shared fully-connected layers after flattening (each followed by ReLU). */
    shared: z.array(positiveInt),
    heads: z.object({
      classification: z.object({ labels: z.array(z.string().min(1)).min(2) }),
      detection: z.object({}).default({}),
      box: z.object({}).default({}),
    }),
  })
  .superRefine((spec, ctx) => {
    for (const key of ['mean', 'std'] as const) {
      if (spec.input[key].length !== spec.input.channels) {
        ctx.addIssue({ code: 'custom', path: ['input', key], message: `needs ${spec.input.channels} values, one per channel` });
      }
    }
    featureMapSizes(spec.input, spec.trunk).forEach(({ height, width }, i) => {
      if (height < 1 || width < 1) ctx.addIssue({ code: 'custom', path: ['trunk', i], message: 'reduces the feature map to nothing' });
    });
    spec.trunk.forEach((block, i) => {
      if (block.type === 'globalAvgPool' && i !== spec.trunk.length - 1) {
        ctx.addIssue({ code: 'custom', path: ['trunk', i], message: 'global average pooling must be the last trunk block' });
      }
    });
    const labels = spec.heads.classification.labels;
    if (new Set(labels).size !== labels.length) {
      ctx.addIssue({ code: 'custom', path: ['heads', 'classification', 'labels'], message: 'labels must be unique' });
    }
  });

export type InputSpec = z.infer<typeof InputSpecSchema>;
export type ConvBlock = z.infer<typeof ConvBlockSchema>;
export type ResidualBlock = z.infer<typeof ResidualBlockSchema>;
export type TrunkBlock = z.infer<typeof TrunkBlockSchema>;
export type ModelSpec = z.infer<typeof ModelSpecSchema>;

export const FASHION_LABELS = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

const IMAGENET_MEAN = [0.5, 0.5, 0.5];
const IMAGENET_STD = [0.25, 0.25, 0.25];

/** Parses and validates a spec; errors name the offending field. */
export function parseSpec(value: unknown, source = 'spec'): ModelSpec {
  const result = ModelSpecSchema.safeParse(value);
  if (!result.success) {
    const details = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`invalid model spec in ${source}: ${details}`);
  }
  return result.data;
}

export const BUILTIN_SPECS: Record<string, ModelSpec> = {
  /** The network of the original design: 3×28×28, two conv blocks, fc 1024 → 128, heads 10 / 1 / 4. */
  seed: parseSpec({
    name: 'seed',
    input: { channels: 3, height: 28, width: 28, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    trunk: [
      { outChannels: 64, kernel: 3, padding: 1, pool: 2 },
      { outChannels: 128, kernel: 3, padding: 1, pool: 2 },
    ],
    shared: [1024, 128],
    heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} },
  }),
  /** Sized for 64×64 RGB FashionLoc canvases: four conv blocks down to 4×4, then fc 256. */
  fashionloc: parseSpec({
    name: 'fashionloc',
    input: { channels: 3, height: 64, width: 64, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    trunk: [
      { outChannels: 32, kernel: 3, padding: 1, pool: 2 },
      { outChannels: 64, kernel: 3, padding: 1, pool: 2 },
      { outChannels: 96, kernel: 3, padding: 1, pool: 2 },
      { outChannels: 128, kernel: 3, padding: 1, pool: 2 },
    ],
    shared: [256],
    heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} },
  }),
  /**
   * fashionloc's input with a ResNet-style trunk: conv 32 + BatchNorm + pool 2 (32×32), then
   * BasicBlocks of 32, 64 (stride 2), 128 (stride 2) and 256 (stride 2) channels down to 4×4, then
   * fc 256 over the flattened map (which keeps the positions the box head needs).
   */
  'fashionloc-res': parseSpec({
    name: 'fashionloc-res',
    input: { channels: 3, height: 64, width: 64, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    trunk: [
      { outChannels: 32, kernel: 3, padding: 1, batchNorm: true, pool: 2 },
      { type: 'residual', outChannels: 32 },
      { type: 'residual', outChannels: 64, stride: 2 },
      { type: 'residual', outChannels: 128, stride: 2 },
      { type: 'residual', outChannels: 256, stride: 2 },
    ],
    shared: [256],
    heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} },
  }),
  /** A very small spec for fast tests. */
  tiny: parseSpec({
    name: 'tiny',
    input: { channels: 3, height: 16, width: 16, mean: IMAGENET_MEAN, std: IMAGENET_STD },
    trunk: [
      { outChannels: 4, kernel: 3, padding: 1, pool: 2 },
      { outChannels: 8, kernel: 3, padding: 1, pool: 2 },
    ],
    shared: [16],
    heads: { classification: { labels: ['a', 'b', 'c'] }, detection: {}, box: {} },
  }),
};

export function builtinSpec(name: string): ModelSpec {
  const spec = BUILTIN_SPECS[name];
  if (!spec) throw new Error(`unknown architecture "${name}"; built-in ones are ${Object.keys(BUILTIN_SPECS).join(', ')}`);
  return structuredClone(spec);
}

/** Height and width of the feature map after each trunk block (convolution, then pooling). */
function featureMapSizes(input: { height: number; width: number }, trunk: readonly TrunkBlock[]): { height: number; width: number }[] {
  let h = input.height;
  let w = input.width;
  const convolve = (kernel: number, stride: number, padding: number) => {
    h = Math.floor((h + 2 * padding - kernel) / stride) + 1;
    w = Math.floor((w + 2 * padding - kernel) / stride) + 1;
  };
  return trunk.map((b) => {
    if (b.type === 'globalAvgPool') {
      h = Math.min(h, 1);
      w = Math.min(w, 1);
    } else if (b.type === 'residual') convolve(3, b.stride, 1);
    else {
      convolve(b.kernel, b.stride, b.padding);
      if (b.pool) {
        h = Math.floor(h / b.pool);
        w = Math.floor(w / b.pool);
      }
    }
    return { height: h, width: w };
  });
}

/** Channels after each trunk block. */
export function trunkChannels(spec: ModelSpec): number[] {
  let channels: number = spec.input.channels;
  return spec.trunk.map((b) => (channels = b.type === 'globalAvgPool' ? channels : b.outChannels));
}

/** Spatial size of the trunk's output feature map. */
export function trunkOutput(spec: ModelSpec): { channels: number; height: number; width: number } {
  const last = featureMapSizes(spec.input, spec.trunk).pop()!;
  return { channels: trunkChannels(spec).pop()!, ...last };
}
