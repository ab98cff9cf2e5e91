// Every test file gets the one onnxruntime-node instance its jest worker process loaded (see
// jest-environment.js), as a program loads it once: evaluating its JavaScript a second time in one
// Node environment aborts the process in onnxruntime-node 1.29 (microsoft/onnxruntime#32464).
module.exports = globalThis.__onnxruntimeNode;
