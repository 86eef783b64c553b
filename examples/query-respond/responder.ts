/**
 * An agent that answers weather queries. Run by run.ts as its own process;
 * prints its multiaddr on the first line of stdout, exits when stdin closes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, respond, MoltSpeakError } from '../../src/index.js'

const dataDir = process.argv[2] ?? await mkdtemp(join(tmpdir(), 'molt-example-responder-'))
const node = await createMoltNode({
  dataDir,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  agent: { name: 'weather', org: 'example', capabilities: ['weather.forecast'] }
})

node.handle('query', (message) => {
  if (message.p.domain !== 'weather') {
    throw new MoltSpeakError('E_CAPABILITY', `no capability for domain ${String(message.p.domain)}`)
  }
  const location = String((message.p.params as Record<string, unknown> | undefined)?.location ?? 'nowhere')
  return respond({ status: 'success', data: { location, forecast: 'sunny', high_c: 21 } }) as Record<string, unknown>
})

process.stdout.write(node.getMultiaddrs()[0].toString() + '\n')
process.stdin.resume()
process.stdin.on('end', () => {
  node.stop().then(async () => { if (process.argv[2] == null) await rm(dataDir, { recursive: true, force: true }) }).finally(() => process.exit(0))
})
