import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiClient } from '../../src/api/index.js'
import type { AnyAgent, CliSandbox, LocalAgent } from './cli.js'
import { eventually } from './eventually.js'

/** A client of a running agent's local API, with the token from its data dir */
export async function apiOf (agent: AnyAgent): Promise<ApiClient> {
  const token = (await readFile(join(agent.dataDir, 'api-token'), 'utf8')).trim()
  return new ApiClient({ url: `http://127.0.0.1:${agent.listening.apiPort}`, token })
}

/**
 * Two agents, each `molt agent` run through the CLI's main() in this process
 * (their clients are what is tested, not their processes): `b` (named bob,
 * runs --echo, offers `capability`) and `a`, which bootstraps from b. Resolves once a is
 * connected to b and holds its card, so discovery answers from local knowledge.
 */
export async function agentPair (sandbox: CliSandbox, capability: string): Promise<{ a: LocalAgent, b: LocalAgent }> {
  const bDir = await sandbox.dir()
  await writeFile(join(bDir, 'config.json'), JSON.stringify({ agent: { name: 'bob', org: 'test', capabilities: [capability] } }), { mode: 0o600 })
  const b = await sandbox.localAgent(bDir, ['--echo'])
  const a = await sandbox.localAgent(await sandbox.dir(), ['--bootstrap', b.listening.addresses[0]])
  const api = await apiOf(a)
  await eventually(async () => (await api.peers()).peers.some(p => p.peerId === b.listening.peerId && p.status === 'connected' && p.name === 'bob'),
    15_000, 'agent A to know agent B')
  return { a, b }
}
