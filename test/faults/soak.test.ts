/**
 * The short CI run of `npm run soak`: agents and two relays as processes,
 * agents and a relay killed (SIGKILL) and restarted, 1% packet loss on the
 * relays' ports inside a private namespace. Exactly-once: nothing lost,
 * nothing duplicated. (The 30-minute figures are in bench/README.md.)
 */
import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { assertNamespacesWork } from '../net/namespace.js'
import { skipWithout } from '../support/tools.js'

const run = promisify(execFile)
const SOAK = join(import.meta.dirname, '..', '..', 'dist', 'bench', 'soak', 'run.js')

describe.skipIf(skipWithout('test/faults/soak.test.ts', 'root', 'ip', 'unshare', 'iptables'))('soak (short)', () => {
  it('25 s of exactly-once traffic under agent and relay churn and 1% loss: zero lost, zero duplicated', async () => {
    assertNamespacesWork()
    const { stdout } = await run(process.execPath, [SOAK, '--duration', '25s', '--agents', '4', '--rate', '20', '--loss', '0.01', '--json'], { timeout: 200_000 })
    const result = JSON.parse(stdout.trim().split('\n').at(-1) as string)
    console.log(`soak: ${JSON.stringify({ promised: result.promised, statuses: result.statuses, lost: result.lost, duplicated: result.duplicated, churn: result.churn, routes: result.routes, drainS: result.drainS })}`)
    expect(result.churn.agents + result.churn.relays).toBeGreaterThanOrEqual(2)
    expect(result.promised).toBeGreaterThan(1000)
    expect(result.lost).toBe(0)
    expect(result.duplicated).toBe(0)
  }, 220_000)
})
