import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

describe('python-agent example (real processes: molt agent, python3 agent.py, an SDK node; built by pretest)', () => {
  it('a Python agent on /v1/stream answers a weather query from the TypeScript SDK', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/python-agent/run.js')], { timeout: 45_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example python-agent: respond from python: rainy in Lisbon')
  }, 60_000)
})
