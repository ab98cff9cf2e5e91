// Tests are written in TypeScript next to the code, compiled by `npm run build`,
// and run from dist/ so that worker threads load plain JavaScript.
module.exports = {
  testEnvironment: '<rootDir>/test/jest-environment.js',
  roots: ['<rootDir>/dist'],
  testMatch: ['**/*.test.js'],
  testTimeout: 60000,
  moduleNameMapper: { '^onnxruntime-node$': '<rootDir>/test/onnxruntime-node.js' },
};
