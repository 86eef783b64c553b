/**
 * The short run of `npm run soak` that `npm test` makes: agents and two relays
 * as processes, agents and a relay killed (SIGKILL) and restarted, 1% packet
 * loss on the relays' ports inside a private namespace. Exactly-once: nothing
 * lost, nothing duplicated.
 *
 * 20 s of traffic (it was 25 s): bench/soak/run.ts churns after every tenth
 * of the duration of traffic, and the second churn (asserted) begins if the
 * first one's kill, 2 s pause and agent restart took under 14 s: an agent
 * starts in 1-2 s idle, 3-5 s with a core busy. The long runs are `npm run
 * soak` (2 minutes by default; the 30-minute figures are in bench/README.md).
 */
import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { assertNamespacesWork } from '../net/namespace.js'
import { skipWithout } from '../support/tools.js'

const run = promisify(execFile)
const SOAK = join(import.meta.dirname, '..', '..', 'dist', 'bench', 'soak', 'run.js')
const DURATION_S = 20
const AGENTS = 4
/** Messages per second each agent sends */
const RATE = 20

describe.skipIf(skipWithout('test/faults/soak.test.ts', 'root', 'ip', 'unshare', 'iptables'))('soak (short)', () => {
  it(`${DURATION_S} s of exactly-once traffic under agent and relay churn and 1% loss: zero lost, zero duplicated`, async () => {
    assertNamespacesWork()
    const { stdout } = await run(process.execPath, [SOAK, '--duration', `${DURATION_S}s`, '--agents', String(AGENTS), '--rate', String(RATE), '--loss', '0.01', '--json'], { timeout: 200_000 })
    const result = JSON.parse(stdout.trim().split('\n').at(-1) as string)
    console.log(`soak: ${JSON.stringify({ promised: result.promised, statuses: result.statuses, lost: result.lost, duplicated: result.duplicated, churn: result.churn, routes: result.routes, drainS: result.drainS })}`)
    expect(result.churn.agents + result.churn.relays).toBeGreaterThanOrEqual(2)
    // traffic flowed: at least half of what the agents offer (killed agents send nothing while they restart)
    expect(result.promised).toBeGreaterThan(AGENTS * RATE * DURATION_S / 2)
    expect(result.lost).toBe(0)
    expect(result.duplicated).toBe(0)
  }, 220_000)
})
