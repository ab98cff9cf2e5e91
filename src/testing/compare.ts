/** Test helper: where two sets of named float arrays first differ bit for bit, to say so in a failure. */

/** undefined when `b` holds every array of `a` with the same bits; else the first difference, in words. */
export function firstBitDifference(a: ReadonlyMap<string, Float32Array>, b: ReadonlyMap<string, Float32Array>): string | undefined {
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y) return `"${name}" is missing`;
    if (x.length !== y.length) return `"${name}" has ${x.length} values against ${y.length}`;
    const xs = new Uint32Array(x.buffer, x.byteOffset, x.length);
    const ys = new Uint32Array(y.buffer, y.byteOffset, y.length);
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] !== ys[i]) return `"${name}"[${i}] is ${x[i]} against ${y[i]}`;
    }
  }
  return undefined;
}
