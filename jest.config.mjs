/** Jest runs the TypeScript sources as ES modules on Node 24 (see TOOLCHAIN.md). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // Trusts the sandbox CA (sandbox/tls/ca.pem) in-process, for the fake Azure's https.
  setupFiles: ['<rootDir>/__tests__/setup-tls.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }],
  },
  testTimeout: 60000,
  // One suite at a time: sandbox machines are real processes, and suites in parallel on a 2-core
  // runner starve each other's timing (a runner that misses its max-lifetime window).
  maxWorkers: 1,
};
