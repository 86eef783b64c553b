/**
 * One relay of the soak, as its own process (killed and restarted by the
 * run). Prints {"event":"ready",address} then {"event":"heap",…} every 5 s.
 *   node relay.js <dataDir> <port>
 */
import { createRelayNode } from '../../src/index.js'
import { scheduleHeapSnapshots } from './heap-snapshots.js'

const [dataDir, port] = process.argv.slice(2)
const emit = (value: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ ...value, t: Date.now() }) + '\n') }
const relay = await createRelayNode({
  dataDir,
  listen: [`/ip4/127.0.0.1/tcp/${port}`],
  dht: { enabled: false },
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'], inboundConnectionThreshold: 10_000 } as any }
})
emit({ event: 'ready', address: relay.getMultiaddrs()[0].toString() })
const heap = setInterval(() => {
  globalThis.gc?.()
  const memory = process.memoryUsage()
  emit({ event: 'heap', heapUsed: memory.heapUsed, arrayBuffers: memory.arrayBuffers, rss: memory.rss, mailbox: relay.mailbox?.stats().messages ?? 0 })
}, 5000)
const stopSnapshots = scheduleHeapSnapshots(process.env.MOLT_SOAK_INSTANCE ?? `relay-${process.pid}`, emit)
process.on('SIGTERM', () => {
  clearInterval(heap)
  stopSnapshots()
  relay.stop({ drainMs: 0 }).finally(() => process.exit(0))
})
