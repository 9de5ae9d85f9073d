// Two projects so CI and developers can run the fast unit tests alone (`npm run test:unit`)
// and the system tests, which start pcscd and vpcd, alone (`npm run test:system`). The test
// scripts pass --runInBand: every system test file owns the one pcscd a machine can run.
// They also pass --forceExit: a finished run must end even if a native addon (pcsclite's
// monitor threads) or a test leaks a handle, or CI would wait for its time limit. Jest then
// says "Force exiting"; find the leak with --detectOpenHandles.
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testEnvironment: 'node',
};

export default {
  // A time limit here is a hang detector, not a speed target (those are in `npm run bench`):
  // generating a test PKI or starting the demo takes seconds on a busy 2-core machine, and
  // jest's default 5 s failed tests that were only slow.
  testTimeout: 30_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'system',
      testMatch: ['<rootDir>/test/system/**/*.test.ts'],
    },
  ],
};
