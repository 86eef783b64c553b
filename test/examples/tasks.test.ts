import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

describe('example tasks (a real process, built by pretest)', () => {
  it('dispatch → one claim granted, one refused → completion, with signed receipts', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/tasks/run.js')], { timeout: 90_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example tasks: report-1 offered to 2 workers; 1 claim granted, 1 refused (E_TASK_CLAIMED); completed with "3 findings"; receipts: 2 offers, 1 grant, 1 completion')
  }, 100_000)
})
