const os = require("os");

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/*.test.ts"],
  setupFilesAfterEnv: ["<rootDir>/__tests__/setup.ts"],
  // Transpile only: `npm test` type-checks the whole project once with `tsc --noEmit` first,
  // instead of ts-jest type-checking every test file and what it imports, again in each worker.
  transform: { "^.+\\.ts$": "ts-jest" },
  // Synthesis and the real-tool checks take a few seconds each.
  testTimeout: 120000,
  // At least two test files at a time: jest's default on two cores is one, but much of a
  // test file's time is its child processes (main.ts, cdktf, terraform, the static checkers).
  maxWorkers: Math.max(2, os.cpus().length - 1),
};
