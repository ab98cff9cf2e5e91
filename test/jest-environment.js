// onnxruntime-node creates typed arrays in Node's main realm, while jest runs tests in a
// separate vm context whose Float32Array is a different class; share the real ones. The module
// itself is loaded once per jest worker process and shared too (test/onnxruntime-node.js says why).
const NodeEnvironment = require('jest-environment-node').TestEnvironment;
const onnxruntimeNode = require('onnxruntime-node');

const SHARED = [
  'Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
  'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer',
  'SharedArrayBuffer', 'DataView',
];

class SharedTypedArrayEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
    this.global.__onnxruntimeNode = onnxruntimeNode;
  }
}

module.exports = SharedTypedArrayEnvironment;
