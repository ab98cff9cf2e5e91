// onnxruntime-node creates typed arrays in Node's main realm, while jest runs tests in a
// separate vm context whose Float32Array is a different class; share the real ones.
const NodeEnvironment = require('jest-environment-node').TestEnvironment;

const SHARED = [
  'Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
  'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer',
  'SharedArrayBuffer', 'DataView',
];

class SharedTypedArrayEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = SharedTypedArrayEnvironment;
