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

  it('offline-delivery: a message to an offline agent waits sealed in a relay mailbox and reaches it when it returns', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/offline-delivery/run.js')], { timeout: 60_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example offline-delivery: stored in 1 relay mailbox while bob was offline; bob got "see you tomorrow" via mailbox')
  }, 70_000)

  it('discovery: finds the agent offering translate.text in the DHT and asks it', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/discovery/run.js')], { timeout: 60_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example discovery: found translator@example offering translate.text; "hello" in fr is "bonjour"')
  }, 70_000)

  it('trust: attests after a good exchange; a third agent reads the score it explains', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/trust/run.js')], { timeout: 60_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example trust: alice attested bob (task_completion, completed, 5/5); carol scores bob above neutral (band moderate) because of alice')
  }, 70_000)

  it('libp2p: moltServices() in two plain createLibp2p() nodes: a signed message and a query → respond', async () => {
    const { stdout } = await run(process.execPath, [join(root, 'dist/examples/libp2p/run.js')], { timeout: 30_000 })
    expect(stdout.trim().split('\n').at(-1)).toBe('example libp2p: bob got a signed "hello from a plain libp2p node"; alice asked weather.forecast and got "sunny"')
  })
})
