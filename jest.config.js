// Two projects so CI and developers can run the fast unit tests alone (`npm run test:unit`)
// and the system tests, which start pcscd and vpcd, alone (`npm run test:system`).
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testEnvironment: 'node',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'system',
      testMatch: ['<rootDir>/test/system/**/*.test.ts'],
      // Each system test file starts its own pcscd; they must not run at the same time.
      maxWorkers: 1,
    },
  ],
};
