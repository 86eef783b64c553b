/**
 * Hosts a share of the discover benchmark's DHT: argv = JSON { count, first,
 * bootstrap, offering }. Node i offers `bench.node<i>` when i < offering, nothing otherwise. Prints {"ready":true} once all
 * its nodes started, then stays up until stdin closes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, type MoltNode } from '../src/index.js'

const { count, first, bootstrap, offering } = JSON.parse(process.argv[2]) as { count: number, first: number, bootstrap: string[], offering: number }
const root = await mkdtemp(join(tmpdir(), 'molt-bench-dht-'))
const nodes: MoltNode[] = []
for (let i = first; i < first + count; i++) {
  nodes.push(await createMoltNode({
    dataDir: join(root, String(i)),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    agent: { name: `n${i}`, capabilities: i < offering ? [`bench.node${i}`] : [] },
    bootstrap,
    heartbeatInterval: 0,
    libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
  }))
}
process.stdout.write(JSON.stringify({ ready: true }) + '\n')
process.stdin.resume()
process.stdin.on('end', () => {
  Promise.allSettled(nodes.map(async n => n.stop()))
    .then(async () => rm(root, { recursive: true, force: true }))
    .finally(() => process.exit(0))
})
