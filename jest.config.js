/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(m?j|t)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  // ESM-only dependencies are compiled to CommonJS for Jest's module system.
  transformIgnorePatterns: ['/node_modules/(?!(unpdf|file-type|strtok3|token-types|peek-readable|@tokenizer|uint8array-extras)/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120_000,
  maxWorkers: 1,
  verbose: true,
  // The Temporal SDK's native runtime keeps handles open after the last worker stops.
  forceExit: true,
};
