import { createMoltNode } from './dist/src/index.js'
import { mkdtempSync } from 'node:fs'
const opts = () => ({ dataDir: mkdtempSync('/tmp/pt-'), listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } } })
const a = await createMoltNode(opts()); const b = await createMoltNode(opts())
const peer = await a.resolvePeer(b.getMultiaddrs()[0])
const p = { action: 'chunk', stream_id: 'x', seq: 0, data: 'x'.repeat(900) }
async function run (n) {
  let next = 0; const t = performance.now()
  await Promise.all(Array.from({ length: 1024 }, async () => { while (next < n) { next++; await a.send(peer, { op: 'stream', p }) } }))
  return n / ((performance.now() - t) / 1000)
}
await run(10000)
for (let i = 0; i < 3; i++) console.log(Math.round(await run(40000)), 'msg/s')
await a.stop(); await b.stop()
