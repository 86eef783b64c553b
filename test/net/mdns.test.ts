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
    const run = await runInNamespace(FIXTURE, [JSON.stringify({ cli: CLI, root: root.dir, mode, ...extra })], 80_000)
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
  // one namespace run for both tests: three mDNS agents and, beside them, two started with --no-mdns
  let run: Promise<any>
  const result = async (): Promise<any> => { run ??= scenario('mdns'); return run }

  it('three `molt agent`s with no configuration find each other and exchange a message', async () => {
    const r = await result()
    expect(r.interfaces).toEqual(['lo'])
    const [a, b, c] = r.agents as string[]
    expect(new Set(r.agents).size).toBe(3)
    // A lists B as connected (molt peers --json), sends to B's PeerId alone, B's --echo answers
    expect(r.peers).toEqual(expect.arrayContaining([
      { peerId: b, status: 'connected', route: 'direct' },
      { peerId: c, status: 'connected', route: 'direct' }
    ]))
    expect(r.peers.map((p: any) => p.peerId)).not.toContain(a)
    expect(r.reply).toMatchObject({ op: 'respond', echo: { domain: 'lan', intent: 'echo', params: { hello: 'mdns' } } })
    // molt find over the LAN: C offers lan.echo (from its connection, not the DHT); B offers nothing
    expect(r.found).toEqual([{ peerId: c, name: 'lan-c', source: 'local' }])
    expect(r.card).toEqual({ peer_id: c, name: 'lan-c' })
    // how fast discovery was is printed above (a figure, not an assertion: the machine may be busy)
    expect(r.timings.discovered).toBeGreaterThan(0)
  }, 90_000)

  it('agents started with --no-mdns do not find each other, nor are found, beside agents that do', async () => {
    const r = await result()
    expect(r.interfaces).toEqual(['lo'])
    expect(r.quiet.agents).toHaveLength(2)
    // checked after the mDNS agents had found each other and talked: the window is an event, not a sleep
    expect(r.timings.quietChecked).toBeGreaterThan(r.timings.mesh)
    expect(r.quiet.peers).toEqual({ d: [], e: [] })
    expect(r.quiet.seenBy).toEqual({ a: [], b: [], c: [] })
    expect(r.quiet.cli).toEqual([])
  }, 90_000)
})
