import { describe, it, expect } from 'vitest'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')

describe('examples (real processes, built by pretest)', () => {
  it('query-respond: two agents in separate processes, query → respond through the SDK', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/query-respond/run.js')], { timeout: 30_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example query-respond: respond from weather@example: sunny in Tokyo, high 21°C')
  })
})
