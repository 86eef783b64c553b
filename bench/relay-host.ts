/**
 * A molt relay for the relay benchmarks, in its own process so its memory and
 * CPU can be read alone. Prints {"address"} first, then on every "stats" line
 * on stdin one {"heapUsed","rss","reservations","cpuUserMs","cpuSystemMs"} line.
 * "profile-start" starts the V8 CPU profiler; "profile-stop <file>" writes the
 * profile (a .cpuprofile for Chrome DevTools) and answers {"profile"}.
 * argv[2] = JSON { dht?: boolean, maxReservations?: number }: run the DHT in server mode, as `molt relay` does;
 * hold up to maxReservations (default 1024, all from one address), as an operator sets `relay.maxReservations`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { createRelayNode } from '../src/index.js'

const hostOptions = JSON.parse(process.argv[2] ?? '{}') as { dht?: boolean, maxReservations?: number }
const maxReservations = hostOptions.maxReservations ?? 1024
const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-relay-'))
const relay = await createRelayNode({
  dataDir,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  maxReservations,
  maxReservationsPerIp: maxReservations,
  bandwidthBytesPerSecond: 1024 * 1024 * 1024,
  dht: hostOptions.dht === true ? { clientMode: false } : { enabled: false },
  // the mailbox bench deposits 10^4..10^5 boxes from one sender for one recipient: lift the
  // per-sender and per-address rates and the per-recipient, per-address and first-contact quotas
  // (the store itself, fsync'd group commits, is unchanged)
  mailbox: {
    senderRate: 1e9, senderBurst: 1e9, sourceRate: 1e9, sourceBurst: 1e9, maxMessagesPerRecipient: 10_000_000, maxBytesPerRecipient: 16 * 1024 ** 3,
    maxTotalMessages: 10_000_000, maxTotalBytes: 16 * 1024 ** 3, maxSourceShare: 1, maxSourceTotalShare: 1, firstContactShare: 1
  },
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
})
process.stdout.write(JSON.stringify({ address: relay.getMultiaddrs()[0].toString() }) + '\n')

const input = createInterface({ input: process.stdin })
let profiler: Session | undefined
input.on('line', (line) => {
  if (line === 'profile-start') {
    profiler = new Session()
    profiler.connect()
    profiler.post('Profiler.enable').then(async () => profiler?.post('Profiler.start')).then(() => {
      process.stdout.write(JSON.stringify({ profiling: true }) + '\n')
    }, (err: Error) => { process.stdout.write(JSON.stringify({ error: err.message }) + '\n') })
    return
  }
  if (line.startsWith('profile-stop ')) {
    const file = line.slice('profile-stop '.length)
    Promise.resolve(profiler?.post('Profiler.stop')).then(async (result: any) => {
      await writeFile(file, JSON.stringify(result.profile))
      profiler?.disconnect()
      process.stdout.write(JSON.stringify({ profile: file }) + '\n')
    }).catch((err: Error) => { process.stdout.write(JSON.stringify({ error: err.message }) + '\n') })
    return
  }
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
