/** Test helper: where two sets of named arrays first differ bit for bit, to say so in a failure. */

type Values = Float32Array | BigInt64Array;

/** undefined when `b` holds every array of `a` with the same bits; else the first difference, in words. */
export function firstBitDifference(a: ReadonlyMap<string, Values>, b: ReadonlyMap<string, Values>): string | undefined {
  for (const [name, x] of a) {
    const y = b.get(name);
    if (!y) return `"${name}" is missing`;
    if (x.length !== y.length || x.BYTES_PER_ELEMENT !== y.BYTES_PER_ELEMENT) return `"${name}" has ${x.length} values against ${y.length}`;
    const width = x.BYTES_PER_ELEMENT;
    const xs = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    const ys = new Uint8Array(y.buffer, y.byteOffset, y.byteLength);
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] !== ys[i]) {
        const at = Math.floor(i / width);
        return `"${name}"[${at}] is ${x[at]} against ${y[at]}`;
      }
    }
  }
  return undefined;
}
