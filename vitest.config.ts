import { defineConfig } from 'vitest/config'
import SlowestFirst from './test/setup/sequencer.js'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // installs the system tools the suites need when missing (root + apt), once
    globalSetup: ['test/setup/tools.ts'],
    // deadlines for a stuck test or hook, not speed requirements: tests wait on events
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // vitest's default on 2 cores is 1 worker (cores - 1): files would run one after another while
    // the namespace, fault and CLI suites mostly wait on their processes. Two files at a time keep
    // both cores busy; the namespace suites are safe side by side (per-pid namespace names)
    maxWorkers: 2,
    // the longest files first (a fresh clone has no durations cached by vitest)
    sequence: { sequencer: SlowestFirst }
  }
})
