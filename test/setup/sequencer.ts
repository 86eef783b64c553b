/**
 * vitest sequencer: the longest files start first, so that with a worker per
 * core the last file to start is a short one (started last, a 2-minute file
 * alone adds up to its whole duration to the run).
 *
 * vitest's own sequencer sorts by the durations cached from the last run in
 * node_modules/.vite; a fresh clone (CI) has none, and it then sorts by file
 * size, which says little here (a 30-line file drives a 40 s soak). So a
 * duration measured here is used when vitest has none: SLOW_FILES below, in
 * ms, from a full run on the 2-core CI machine (refresh them from
 * `npm test -- --reporter=json --outputFile=r.json`: each testResults[]
 * entry's endTime - startTime). Files not listed count as short.
 */
import { relative } from 'node:path'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

export const SLOW_FILES: Record<string, number> = {
  'test/faults/store-forward.test.ts': 130_000,
  'test/integration/cli-send.test.ts': 100_000,
  'test/integration/trust-network.test.ts': 80_000,
  'test/integration/cli-newcomer.test.ts': 80_000,
  'test/net/nat.test.ts': 75_000,
  'test/net/reach.test.ts': 60_000,
  'test/integration/org-cli.test.ts': 50_000,
  'test/integration/dht.test.ts': 45_000,
  'test/faults/soak.test.ts': 40_000,
  'test/integration/cli.test.ts': 35_000,
  'test/integration/tasks-cli.test.ts': 35_000,
  'test/fuzz/speak.test.ts': 25_000,
  'test/integration/logging.test.ts': 25_000,
  'test/integration/hostile.test.ts': 25_000,
  'test/net/mdns.test.ts': 23_000,
  'test/integration/tasks-crash.test.ts': 23_000,
  'test/fuzz/trust.test.ts': 20_000,
  'test/integration/store-forward.test.ts': 20_000,
  'test/examples/examples.test.ts': 19_000,
  'test/integration/tasks-claims.test.ts': 18_000,
  'test/integration/mcp.test.ts': 18_000,
  'test/integration/ops.test.ts': 18_000
}

export default class SlowestFirst extends BaseSequencer {
  override async sort (files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root
    const expected = (spec: TestSpecification): number => {
      const path = relative(root, spec.moduleId)
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${path}`)
      return cached?.duration ?? SLOW_FILES[path] ?? 0
    }
    const weights = new Map(files.map(spec => [spec, expected(spec)]))
    return [...files].sort((a, b) => (weights.get(b) as number) - (weights.get(a) as number))
  }
}
