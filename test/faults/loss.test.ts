/**
 * Packet loss between agents and their relay (iptables `statistic` drops
 * inside a private network namespace: nothing leaves it). Every message whose
 * send() resolved must arrive.
 */
import { describe, it, beforeAll } from 'vitest'
import { join } from 'node:path'
import { assertNamespacesWork, runInNamespace } from '../net/namespace.js'
import { skipWithout } from '../support/tools.js'

const SCRIPT = join(import.meta.dirname, 'loss.mjs')

describe.skipIf(skipWithout('test/faults/loss.test.ts', 'root', 'ip', 'unshare', 'iptables'))('store-and-forward under packet loss between agent and relay', () => {
  beforeAll(() => { assertNamespacesWork() })

  // each rate in its own namespace (its own iptables rules), side by side: the runs mostly wait on
  // retransmissions and retries, so the two together take about as long as the slower one
  for (const loss of [0.01, 0.05]) {
    it.concurrent(`${loss * 100}% random loss: every acknowledged message is delivered`, async ({ expect }) => {
      const run = await runInNamespace<{ dropped: number, promised: number, delivered: number, duplicates: number, seconds: number, statuses: Record<string, number> }>(SCRIPT, [String(loss), '1000'], 200_000)
      expect(run.code, run.stderr.slice(-3000)).toBe(0)
      console.log(`${loss * 100}% loss: ${JSON.stringify(run.result)}`)
      expect(run.result.dropped).toBeGreaterThan(0)
      expect(run.result.promised).toBe(1000)
      expect(run.result.delivered).toBe(1000)
    }, 220_000)
  }
})
