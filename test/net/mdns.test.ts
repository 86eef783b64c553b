import { describe, it, expect, beforeAll } from 'vitest'
import { access } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { CLI } from '../support/cli.js'
import { assertNamespacesWork, runInNamespace, tempRoot } from './namespace.js'
import { skipWithout } from '../support/tools.js'

/**
 * LAN discovery with no configuration: `molt agent` processes in a private
 * network namespace (loopback only, multicast on) find each other by mDNS and
 * exchange a message. Every process runs inside the namespace; the fixture
 * refuses to start agents unless `lo` is the only interface.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/lan-agents.mjs', import.meta.url))
const SKIP = skipWithout('test/net/mdns.test.ts', 'root', 'ip', 'unshare')

beforeAll(async () => {
  assertNamespacesWork()
  await access(CLI).catch(() => { throw new Error(`${CLI} is missing: run \`npm run build\` first`) })
})

async function scenario (mode: 'mdns' | 'no-mdns', extra: Record<string, unknown> = {}): Promise<any> {
  const root = await tempRoot(`molt-lan-${mode}-`)
  try {
    const run = await runInNamespace(FIXTURE, [JSON.stringify({ cli: CLI, root: root.dir, mode, ...extra })], 60_000)
    // the timings are part of what this test reports
    console.log(`[lan ${mode}] ${run.ms} ms in the namespace; ${JSON.stringify(run.result.timings)}`)
    expect(run.result, `${JSON.stringify(run.result, null, 2)}\nstderr: ${run.stderr}`).toMatchObject({ ok: true })
    expect(run.code).toBe(0)
    return run.result
  } finally {
    await root.remove()
  }
}

describe.skipIf(SKIP)('LAN discovery (mDNS, _molt._udp.local) in a private network namespace', () => {
  it('three `molt agent`s with no configuration find each other and exchange a message', async () => {
    const result = await scenario('mdns')
    expect(result.interfaces).toEqual(['lo'])
    const [a, b, c] = result.agents as string[]
    expect(new Set(result.agents).size).toBe(3)
    // A lists B as connected (molt peers --json), sends to B's PeerId alone, B's --echo answers
    expect(result.peers).toEqual(expect.arrayContaining([
      { peerId: b, status: 'connected', route: 'direct' },
      { peerId: c, status: 'connected', route: 'direct' }
    ]))
    expect(result.peers.map((p: any) => p.peerId)).not.toContain(a)
    expect(result.reply).toMatchObject({ op: 'respond', echo: { domain: 'lan', intent: 'echo', params: { hello: 'mdns' } } })
    // molt find over the LAN: C offers lan.echo (from its connection, not the DHT); B offers nothing
    expect(result.found).toEqual([{ peerId: c, name: 'lan-c', source: 'local' }])
    expect(result.card).toEqual({ peer_id: c, name: 'lan-c' })
    // how fast discovery was is printed above (a figure, not an assertion: the machine may be busy)
    expect(result.timings.discovered).toBeGreaterThan(0)
  }, 90_000)

  it('agents started with --no-mdns do not find each other', async () => {
    const result = await scenario('no-mdns', { quietMs: 3000 })
    expect(result.interfaces).toEqual(['lo'])
    expect(result.polls).toBeGreaterThan(5)
    expect(result.peers).toEqual([])
  }, 90_000)
})
