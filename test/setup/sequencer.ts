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
  // from the idle CI run of 2 Dec 2026 (files over 10 s); those marked * were cut since,
  // estimated from their CPU time measured alone before and after the change
  'test/integration/dht.test.ts': 70_000,
  'test/net/reach.test.ts': 71_000,
  'test/net/nat.test.ts': 61_000,
  'test/integration/cli-send.test.ts': 44_000,
  'test/faults/store-forward.test.ts': 44_000,
  'test/fuzz/speak.test.ts': 29_000,
  'test/integration/tasks-crash.test.ts': 28_000,
  'test/faults/soak.test.ts': 42_000,
  'test/integration/cli.test.ts': 25_000,
  'test/integration/hostile.test.ts': 23_000,
  'test/integration/cli-newcomer.test.ts': 23_000,
  'test/fuzz/mailbox.test.ts': 22_000,
  'test/examples/examples.test.ts': 21_000,
  'test/net/mdns.test.ts': 20_000,
  'test/integration/trust-network.test.ts': 18_000, // * 53 s: no DHT on its 23 nodes, dials at once
  'test/integration/logging.test.ts': 18_000,
  'test/integration/relay-client.test.ts': 17_000,
  'test/fuzz/trust.test.ts': 17_000,
  'test/faults/disk-full.test.ts': 17_000,
  'test/integration/mcp.test.ts': 16_000,
  'test/integration/org-revocation-network.test.ts': 15_000, // * 37 s: no DHT on its 21 nodes
  'test/integration/relay-server.test.ts': 14_000,
  'test/integration/topics-cli.test.ts': 13_000,
  'test/examples/python-tasks.test.ts': 12_000, // * 66 s: its example no longer lingers 60 s on a timer
  'test/integration/tasks-claims.test.ts': 12_000, // * 15 s: no DHT on its 11 nodes
  'test/integration/dht-100.test.ts': 12_000,
  'test/integration/dashboard.test.ts': 12_000,
  'test/integration/cli-agent-restart.test.ts': 12_000,
  'test/integration/store-forward.test.ts': 11_000,
  'test/fuzz/api.test.ts': 11_000
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
