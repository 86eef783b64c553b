import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { join } from 'node:path'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

describe('python-tasks example (real processes: two molt agents, two python3 worker.py, an SDK dispatcher; built by pretest)', () => {
  it('two Python workers race for 10 tasks: each granted once, completed once, the loser refused with E_TASK_CLAIMED', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/python-tasks/run.js')], { timeout: 170_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example python-tasks: 10 tasks raced by 2 Python workers; each granted once and completed once (10 wins, 10 refusals E_TASK_CLAIMED)')
  }, 180_000)

  it('worker.py is written on the molt_client package (claim, progress, complete), not raw HTTP', async () => {
    const source = await readFile(join(root, 'examples/python-tasks/worker.py'), 'utf8')
    expect(source).toMatch(/^\s*from molt_client import .*MoltClient/m)
    expect(source).toMatch(/client\.claim\(/)
    expect(source).toMatch(/client\.complete\(/)
    expect(source).not.toMatch(/urllib|http\.client/)
  })
})
