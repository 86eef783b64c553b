import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { eventually } from '../support/eventually.js'
import { CliSandbox, type LocalAgent } from '../support/cli.js'

const sandbox = new CliSandbox()
let boss: LocalAgent
let worker: LocalAgent

beforeAll(async () => {
  // `molt agent` through the CLI's main() in this process, side by side: the topic commands are what is tested
  ;[boss, worker] = await Promise.all([sandbox.localAgent(await sandbox.dir()), sandbox.localAgent(await sandbox.dir())])
}, 120_000)
afterAll(async () => { await sandbox.cleanup() })

/** `molt <args>` through the CLI's main() in this process: the agents are the real processes here, the commands are not the point */
async function molt (args: string[], dataDir: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return sandbox.call([...args, '--data-dir', dataDir], 60_000)
}

describe('molt topic', () => {
  it('join, publish (read from the inbox with the topic named), a task offered to the topic, leave, --json', async () => {
    for (const agent of [boss, worker]) {
      const joined = await molt(['topic', 'join', 'crew', '--json'], agent.dataDir)
      expect(joined.code, joined.stderr).toBe(0)
      expect(JSON.parse(joined.stdout)).toMatchObject({ name: 'crew', topic: 'molt/topic/crew' })
    }
    // a connection between the agents: gossipsub then tells each the other joined
    expect((await molt(['ping', worker.listening.addresses[0]], boss.dataDir)).code).toBe(0)
    await eventually(async () => {
      const { topics } = JSON.parse((await molt(['topic', 'list', '--json'], boss.dataDir)).stdout)
      return topics[0]?.peers.includes(worker.listening.peerId)
    }, 60_000, 'boss sees worker in the topic')

    const published = await molt(['topic', 'publish', 'crew', '--op', 'query', '--payload', '{"domain":"crew","intent":"hello"}', '--json'], boss.dataDir)
    expect(published.code, published.stderr).toBe(0)
    const { id, recipients } = JSON.parse(published.stdout)
    expect(recipients).toBe(1)
    const entry = await eventually(async () => {
      const inbox = JSON.parse((await molt(['inbox', '--json'], worker.dataDir)).stdout)
      const entries = Array.isArray(inbox) ? inbox : inbox.messages ?? []
      return entries.find((e: any) => e.message?.id === id)
    }, 60_000, 'the topic message in the worker\'s inbox')
    expect(entry).toMatchObject({ topic: 'crew', peer: boss.listening.peerId })

    const offer = await molt(['task', 'offer', '--topic', 'crew', '--id', 'crew-1', '--type', 'demo', '--json'], boss.dataDir)
    expect(offer.code, offer.stderr).toBe(0)
    expect(JSON.parse(offer.stdout)).toMatchObject({ id: 'crew-1', state: 'offered', topic: 'crew' })
    await eventually(async () => JSON.parse((await molt(['task', 'list', '--role', 'worker', '--json'], worker.dataDir)).stdout).tasks.some((t: any) => t.id === 'crew-1'), 60_000, 'the offer at the worker')
    const claim = await molt(['task', 'claim', 'crew-1', '--json'], worker.dataDir)
    expect(claim.code, claim.stderr).toBe(0)
    expect(JSON.parse(claim.stdout)).toMatchObject({ state: 'claimed', topic: 'crew' })

    const left = await molt(['topic', 'leave', 'crew', '--json'], worker.dataDir)
    expect(left.code).toBe(0)
    expect(JSON.parse((await molt(['topic', 'list', '--json'], worker.dataDir)).stdout).topics).toEqual([])
  }, 300_000)

  it('--help, usage errors (exit 2), a bad name (exit 1 with E_INVALID_PARAM)', async () => {
    const help = await molt(['topic', '--help'], boss.dataDir)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('molt topic publish <name> --op <op>')
    for (const args of [['topic'], ['topic', 'bogus'], ['topic', 'join'], ['topic', 'publish', 'crew'], ['topic', 'list', 'extra'], ['topic', 'join', 'crew', '--op', 'query']]) {
      expect((await molt(args, boss.dataDir)).code, args.join(' ')).toBe(2)
    }
    const bad = await molt(['topic', 'join', 'bad/name', '--json'], boss.dataDir)
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'E_INVALID_PARAM' } })
  }, 120_000)
})
