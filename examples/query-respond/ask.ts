/** Ask the weather agent at the multiaddr given as argv[2] for Tokyo's forecast */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, query } from '../../src/index.js'

export async function ask (address: string): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'molt-example-asker-'))
  const node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], agent: { name: 'asker', org: 'example' } })
  try {
    const reply = await node.request(address, {
      op: 'query',
      p: query({ domain: 'weather', intent: 'forecast', params: { location: 'Tokyo' } }) as Record<string, unknown>
    }, { timeout: 10_000 })
    const data = reply.p.data as { location: string, forecast: string, high_c: number }
    return `${reply.op} from ${reply.from.agent}@${reply.from.org}: ${data.forecast} in ${data.location}, high ${data.high_c}°C`
  } finally {
    await node.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

if (process.argv[1]?.endsWith('ask.js') === true) {
  if (process.argv[2] == null) {
    process.stderr.write('usage: node dist/examples/query-respond/ask.js <responder multiaddr>\n')
    process.exit(2)
  }
  process.stdout.write(await ask(process.argv[2]) + '\n')
}
