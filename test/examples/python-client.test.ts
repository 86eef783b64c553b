import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { CliSandbox, type LocalAgent } from '../support/cli.js'
import { agentPair } from '../support/agent-pair.js'
import { completion } from '../support/process.js'

const root = join(import.meta.dirname, '..', '..')
const CAPABILITY = 'python.echo'

/** The clients/python tests use the standard library only: the first python3 that runs will do */
function python (): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate
  }
  throw new Error('no python3 found')
}

describe('clients/python (molt_client) against two real molt agents', () => {
  const sandbox = new CliSandbox()
  let a: LocalAgent
  let b: LocalAgent

  beforeAll(async () => {
    // B offers CAPABILITY and answers with --echo; A bootstraps from B and knows its card
    ;({ a, b } = await agentPair(sandbox, CAPABILITY))
  }, 60_000)

  afterAll(async () => {
    // SIGKILL by PID for every agent, then the temp dirs
    await sandbox.cleanup()
  })

  it('every unittest in clients/python/tests passes', async () => {
    const child = spawn(python(), ['-m', 'unittest', 'discover', '-s', join(root, 'clients', 'python', 'tests'), '-v'], {
      cwd: join(root, 'clients', 'python'),
      env: {
        ...process.env,
        MOLT_TEST_DATA_DIR: a.dataDir,
        MOLT_TEST_PEER_DATA_DIR: b.dataDir,
        MOLT_TEST_PEER_ADDRESS: b.listening.addresses[0],
        MOLT_TEST_CAPABILITY: CAPABILITY,
        // leave no __pycache__ in the source tree
        PYTHONDONTWRITEBYTECODE: '1'
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    // completion() SIGKILLs the python process (by PID) if it overruns
    const { code, stderr } = await completion(child, 100_000)
    expect(stderr, stderr).toMatch(/\nOK\s*$/)
    expect(code).toBe(0)
    const ran = Number(/Ran (\d+) tests?/.exec(stderr)?.[1])
    expect(ran).toBeGreaterThanOrEqual(13)
    expect(stderr).not.toMatch(/skipped/)
  }, 120_000)
})
