import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { eventually } from '../support/eventually.js'
import { CliSandbox, type RunningAgent } from '../support/cli.js'

const sandbox = new CliSandbox()
let boss: RunningAgent
let worker: RunningAgent
let rival: RunningAgent

beforeAll(async () => {
  // side by side: each start is mostly module loading and disk (sandbox.agent() allows a loaded machine 60 s)
  const dirs = await Promise.all([sandbox.dir(), sandbox.dir(), sandbox.dir()])
  ;[boss, worker, rival] = await Promise.all(dirs.map(async dir => sandbox.agent(dir)))
}, 120_000)

afterAll(async () => {
  await sandbox.cleanup()
})

async function molt (args: string[], dataDir: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return sandbox.call([...args, '--data-dir', dataDir], 60_000)
}

describe('molt task', () => {
  it('offer → claim → complete through the running agents, --json', async () => {
    const offer = await molt(['task', 'offer', worker.listening.addresses[0], rival.listening.addresses[0], '--id', 'cli-1', '--type', 'demo', '--params', '{"n":1}', '--json'], boss.dataDir)
    expect(offer.stderr).toBe('')
    expect(offer.code).toBe(0)
    expect(JSON.parse(offer.stdout)).toMatchObject({ id: 'cli-1', role: 'offerer', state: 'offered', type: 'demo', params: { n: 1 } })

    await worker.waitForJson(v => v.event === 'message' && v.message?.p?.task_id === 'cli-1', 60_000)
    await rival.waitForJson(v => v.event === 'message' && v.message?.p?.task_id === 'cli-1', 60_000)
    const listed = await molt(['task', 'list', '--role', 'worker', '--json'], worker.dataDir)
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout).tasks.map((t: any) => [t.id, t.state])).toEqual([['cli-1', 'offered']])

    const claim = await molt(['task', 'claim', 'cli-1', '--json'], worker.dataDir)
    expect(claim.code).toBe(0)
    expect(JSON.parse(claim.stdout)).toMatchObject({ id: 'cli-1', state: 'claimed', grant: { claimant: worker.listening.peerId } })

    // the loser learns at once, with an exit code a script can test
    const lost = await molt(['task', 'claim', 'cli-1', '--json'], rival.dataDir)
    expect(lost.code).toBe(3)
    expect(JSON.parse(lost.stdout)).toMatchObject({ error: { code: 'E_TASK_CLAIMED' } })

    const done = await molt(['task', 'complete', 'cli-1', '--result', '{"ok":true}', '--json'], worker.dataDir)
    expect(done.code).toBe(0)
    expect(JSON.parse(done.stdout).state).toBe('completed')

    const shown = await eventually(async () => {
      const show = await molt(['task', 'show', 'cli-1', '--json'], boss.dataDir)
      const record = JSON.parse(show.stdout)
      return record.state === 'completed' ? record : undefined
    }, 60_000, 'completion at the offerer', 100)
    expect(shown).toMatchObject({ worker: worker.listening.peerId, result: { ok: true } })

    const human = await molt(['task', 'show', 'cli-1'], boss.dataDir)
    expect(human.stdout).toContain('cli-1 completed offerer [demo]')
    expect(human.stdout).toContain('result: {"ok":true}')
  }, 300_000)

  it('--help, usage errors (exit 2), unknown tasks (exit 1)', async () => {
    const help = await molt(['task', '--help'], boss.dataDir)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('molt task offer <peer>')
    expect((await molt(['task'], boss.dataDir)).code).toBe(2)
    expect((await molt(['task', 'fly'], boss.dataDir)).code).toBe(2)
    expect((await molt(['task', 'offer'], boss.dataDir)).code).toBe(2)
    expect((await molt(['task', 'offer', worker.listening.peerId, '--params', '[1]'], boss.dataDir)).code).toBe(2)
    const unknown = await molt(['task', 'show', 'nope', '--json'], boss.dataDir)
    expect(unknown.code).toBe(1)
    expect(JSON.parse(unknown.stdout)).toMatchObject({ error: { code: 'E_TASK_UNKNOWN' } })
  }, 300_000)

  it('works without a running agent (a short-lived node on the data dir)', async () => {
    const dir = await sandbox.dir()
    const listed = await molt(['task', 'list', '--json'], dir)
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout)).toEqual({ tasks: [] })
    const unknown = await molt(['task', 'complete', 'nope', '--json'], dir)
    expect(unknown.code).toBe(1)
    expect(JSON.parse(unknown.stdout)).toMatchObject({ error: { code: 'E_TASK_UNKNOWN' } })
  }, 120_000)
})
