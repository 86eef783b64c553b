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
import { createInterface } from 'node:readline'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMoltNode, query } from '../../src/index.js'

const here = dirname(fileURLToPath(import.meta.url))
// this file runs from dist/examples/python-agent; agent.py is not compiled, so it stays in the repo
const root = join(here, '..', '..', '..')
const cli = join(root, 'dist', 'src', 'cli', 'main.js')
const script = join(root, 'examples', 'python-agent', 'agent.py')

/** Resolve with the first stdout line `accept` returns a value for; reject if the process exits first */
async function waitForLine<T> (child: ChildProcess, name: string, accept: (line: string) => T | undefined, timeoutMs = 20_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    const timer = setTimeout(() => { finish(); reject(new Error(`${name} did not start within ${timeoutMs} ms`)) }, timeoutMs)
    const onExit = (code: number | null): void => { finish(); reject(new Error(`${name} exited with code ${code}`)) }
    const onLine = (line: string): void => {
      const value = accept(line)
      if (value !== undefined) { finish(); resolve(value) }
    }
    const finish = (): void => {
      clearTimeout(timer)
      lines.off('line', onLine)
      child.off('exit', onExit)
    }
    lines.on('line', onLine)
    child.once('exit', onExit)
  })
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
  await exited
  clearTimeout(timer)
}

const agentDir = await mkdtemp(join(tmpdir(), 'molt-example-python-agent-'))
const askerDir = await mkdtemp(join(tmpdir(), 'molt-example-python-asker-'))
const children: ChildProcess[] = []
try {
  const agent = spawn(process.execPath, [cli, 'agent', '--data-dir', agentDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], {
    env: { ...process.env, MOLT_HOME: agentDir },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  children.push(agent)
  const listening = await waitForLine(agent, 'molt agent', (line) => {
    try {
      const value = JSON.parse(line) as { event?: string, peerId: string, addresses: string[], apiPort: number }
      return value.event === 'listening' ? value : undefined
    } catch {
      return undefined
    }
  })

  const python = spawn('python3', [script, agentDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.unshift(python)
  await waitForLine(python, 'agent.py', (line) => line === 'python agent ready' ? true : undefined)

  const address = listening.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/') && !a.includes('/ws')) ?? `${listening.addresses[0]}`
  const to = address.includes('/p2p/') ? address : `${address}/p2p/${listening.peerId}`
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
