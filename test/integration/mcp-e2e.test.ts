import { describe, it, expect, afterAll } from 'vitest'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, type MoltNode } from '../../src/index.js'
import { McpSession, alive } from '../support/mcp.js'
import { eventually } from '../support/eventually.js'

/**
 * The whole path an LLM agent takes: its MCP client asks `molt mcp` (which
 * starts an agent on an empty data dir: none runs there) to find a weather
 * agent and query it; that other agent is an SDK node answering with a handler.
 */
describe('MCP end to end: an MCP client asks one agent to query another', () => {
  const dirs: string[] = []
  let weather: MoltNode | undefined
  let session: McpSession | undefined

  afterAll(async () => {
    await session?.close()
    await weather?.stop()
    await Promise.all(dirs.map(async dir => rm(dir, { recursive: true, force: true })))
  })

  it('finds the weather agent by capability, queries it and gets its handler\'s answer', async () => {
    const tmp = async (): Promise<string> => { const dir = await mkdtemp(join(tmpdir(), 'molt-mcp-e2e-')); dirs.push(dir); return dir }
    weather = await createMoltNode({
      dataDir: await tmp(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      agent: { name: 'weather', org: 'example', capabilities: ['weather.forecast'] }
    })
    const asked: string[] = []
    weather.handle('query', (message) => {
      const location = String((message.p.params as { location?: string } | undefined)?.location)
      asked.push(location)
      return { status: 'success', data: { forecast: 'rainy', location } }
    })
    const weatherAddress = `${weather.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1/tcp/'))}`

    // the LLM's agent: a data dir with no agent running, bootstrapping from the weather agent
    const dataDir = await tmp()
    await writeFile(join(dataDir, 'config.json'), JSON.stringify({ agent: { name: 'llm', org: 'example' }, discovery: { bootstrap: [weatherAddress] } }), { mode: 0o600 })
    session = await new McpSession(['--data-dir', dataDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0']).start()
    const me = await session.ok('whoami')
    expect(session.stderr).toContain(`started one: ${me.peerId}`)
    // the node started here serves the local API too, so other molt commands reach it meanwhile
    const endpoint = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
    expect(endpoint.pid).toBe(session.pid)

    const { agents } = await session.ok('find_agents', { capability: 'weather.forecast', timeoutMs: 15_000 })
    expect(agents.map((a: any) => a.peerId)).toEqual([weather.peerId.toString()])
    expect(agents[0].trust.score).toBe(0.5)

    const { ok, reply } = await session.ok('request', {
      to: agents[0].peerId,
      payload: { domain: 'weather', intent: 'forecast', params: { location: 'Lisbon' } },
      timeoutMs: 15_000
    })
    expect(ok).toBe(true)
    expect(reply).toMatchObject({ op: 'respond', p: { status: 'success', data: { forecast: 'rainy', location: 'Lisbon' } } })
    expect(asked).toEqual(['Lisbon'])
    expect(session.errors).toEqual([])

    // the client goes away: the server stops its node, releases the data dir and exits by itself
    const pid = session.pid!
    await session.client.close()
    expect(alive(pid)).toBe(false)
    expect(existsSync(join(dataDir, 'api.json'))).toBe(false)
  }, 90_000)

  it('SIGTERM stops a server that started its own agent: node stopped, api.json removed', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'molt-mcp-e2e-'))
    dirs.push(dataDir)
    const own = await new McpSession(['--data-dir', dataDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0']).start()
    try {
      await own.ok('whoami')
      expect(existsSync(join(dataDir, 'api.json'))).toBe(true)
      process.kill(own.pid!, 'SIGTERM')
      await eventually(() => !alive(own.pid!), 15_000, 'molt mcp to exit')
      expect(existsSync(join(dataDir, 'api.json'))).toBe(false)
      expect(own.stderr).not.toMatch(/unexpected failure/)
    } finally {
      await own.close()
    }
  }, 60_000)
})
