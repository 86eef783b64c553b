/**
 * A molt relay for the relay benchmarks, in its own process so its memory and
 * CPU can be read alone. Prints {"address"} first, then on every "stats" line
 * on stdin one {"heapUsed","rss","reservations","cpuUserMs","cpuSystemMs"} line.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createRelayNode } from '../src/index.js'

const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-relay-'))
const relay = await createRelayNode({
  dataDir,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  maxReservations: 4096,
  maxReservationsPerIp: 4096,
  bandwidthBytesPerSecond: 1024 * 1024 * 1024,
  dht: { enabled: false },
  // the mailbox bench deposits 10^4..10^5 boxes from one sender for one recipient: lift the
  // per-sender and per-address rates and the per-recipient, per-address and first-contact quotas
  // (the store itself, fsync'd group commits, is unchanged)
  mailbox: {
    senderRate: 1e9, senderBurst: 1e9, sourceRate: 1e9, sourceBurst: 1e9, maxMessagesPerRecipient: 10_000_000, maxBytesPerRecipient: 16 * 1024 ** 3,
    maxTotalMessages: 10_000_000, maxTotalBytes: 16 * 1024 ** 3, maxSourceShare: 1, maxSourceTotalShare: 1, firstContactShare: 1
  },
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'], maxConnections: 10_000 } as any }
})
process.stdout.write(JSON.stringify({ address: relay.getMultiaddrs()[0].toString() }) + '\n')

const input = createInterface({ input: process.stdin })
input.on('line', () => {
  globalThis.gc?.()
  const usage = process.cpuUsage()
  const memory = process.memoryUsage()
  process.stdout.write(JSON.stringify({
    heapUsed: memory.heapUsed, rss: memory.rss, reservations: relay.stats().reservations, mailbox: relay.mailbox?.stats(),
    cpuUserMs: usage.user / 1000, cpuSystemMs: usage.system / 1000
  }) + '\n')
})
input.on('close', () => {
  relay.stop().then(async () => rm(dataDir, { recursive: true, force: true })).finally(() => process.exit(0))
})
