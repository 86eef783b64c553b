/**
 * Example 2 — an agent written in Python, on the local API.
 * Starts `molt agent` (its own process, temp data dir), then agent.py
 * (python3, the molt_client package of clients/python: standard library
 * only) which subscribes to the agent's messages (GET /v1/stream) and
 * answers weather queries (POST /v1/messages).
 * A TypeScript SDK node then asks it for Lisbon's forecast, and this ends
 * with one deterministic line:
 *   example python-agent: respond from python: rainy in Lisbon
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMoltNode, query } from '../../src/index.js'
import { startAgent, stop, tcpAddress, waitForLine } from '../python-tasks/processes.js'

const here = dirname(fileURLToPath(import.meta.url))
// this file runs from dist/examples/python-agent; agent.py is not compiled, so it stays in the repo
const root = join(here, '..', '..', '..')
const cli = join(root, 'dist', 'src', 'cli', 'main.js')
const script = join(root, 'examples', 'python-agent', 'agent.py')

const agentDir = await mkdtemp(join(tmpdir(), 'molt-example-python-agent-'))
const askerDir = await mkdtemp(join(tmpdir(), 'molt-example-python-asker-'))
const children: ChildProcess[] = []
try {
  const listening = await startAgent(cli, agentDir, children)

  const python = spawn('python3', [script, agentDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.unshift(python)
  await waitForLine(python, 'agent.py', (line) => line === 'python agent ready' ? true : undefined)

  const to = tcpAddress(listening)
  const node = await createMoltNode({ dataDir: askerDir, listen: ['/ip4/127.0.0.1/tcp/0'], agent: { name: 'asker', org: 'example' } })
  try {
    const reply = await node.request(to, {
      op: 'query',
      p: query({ domain: 'weather', intent: 'forecast', params: { location: 'Lisbon' } }) as Record<string, unknown>
    }, { timeout: 15_000 })
    const data = reply.p.data as { forecast: string, location: string }
    // stay up until agent.py acknowledged the query (its respond was delivered): health shows `acked`
    const deadline = Date.now() + 5000
    while (Date.now() < deadline) {
      const health = await (await fetch(`http://127.0.0.1:${listening.apiPort}/v1/health`)).json() as { acked?: number }
      if ((health.acked ?? 0) > 0) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    process.stdout.write(`example python-agent: ${reply.op} from python: ${data.forecast} in ${data.location}\n`)
  } finally {
    await node.stop()
  }
} finally {
  for (const child of children) await stop(child)
  await rm(agentDir, { recursive: true, force: true })
  await rm(askerDir, { recursive: true, force: true })
}
