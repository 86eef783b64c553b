import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { join } from 'node:path'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

describe('python-agent example (real processes: molt agent, python3 agent.py, an SDK node; built by pretest)', () => {
  it('a Python agent on /v1/stream answers a weather query from the TypeScript SDK', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/python-agent/run.js')], { timeout: 45_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example python-agent: respond from python: rainy in Lisbon')
  }, 60_000)

  it('agent.py is written on the molt_client package, not raw HTTP', async () => {
    const source = await readFile(join(root, 'examples/python-agent/agent.py'), 'utf8')
    expect(source).toMatch(/^\s*from molt_client import .*MoltClient/m)
    expect(source).not.toMatch(/urllib|http\.client/)
  })
})
