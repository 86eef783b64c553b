/**
 * One agent of the soak (bench/soak/run.ts), as its own process the run may
 * kill -9. It listens on a fixed 127.0.0.1 port, or — with port "-" — only
 * through its relays, like an agent behind NAT. stdin: one JSON command per
 * line ({"cmd":"peers","peers":[{peerId,addrs}]} starts the traffic). stdout:
 * JSON events: ready, sent (each send() that resolved), got (each query
 * received, with its latency), heap (every 5 s).
 *   node agent.js <dataDir> <port|-> <relay,relay> <messages/s> <mode>
 */
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { createMoltNode, type DeliveryMode } from '../../src/index.js'
import { scheduleHeapSnapshots } from './heap-snapshots.js'

const [dataDir, port, relayList, rate, mode] = process.argv.slice(2)
const relays = relayList === '' ? [] : relayList.split(',')
const emit = (value: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ ...value, t: Date.now() }) + '\n') }

const node = await createMoltNode({
  dataDir,
  listen: port === '-' ? [] : [`/ip4/127.0.0.1/tcp/${port}`],
  relays,
  heartbeatInterval: 0,
  mailboxCheckInterval: 5_000,
  // --replay-cache / --inbox-max of run.ts: smaller caps, reached within a run
  ...(process.env.MOLT_SOAK_REPLAY_CACHE != null ? { speak: { replayCacheSize: Number(process.env.MOLT_SOAK_REPLAY_CACHE) } } : {}),
  ...(process.env.MOLT_SOAK_INBOX_MAX != null ? { inboxMaxMessages: Number(process.env.MOLT_SOAK_INBOX_MAX) } : {}),
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'], inboundConnectionThreshold: 10_000 } as any }
})
node.addEventListener('message', (evt) => {
  const { message, route } = evt.detail
  if (message.op === 'query') emit({ event: 'got', id: message.id, from: evt.detail.peer, latency: Date.now() - message.ts, route })
})
emit({ event: 'ready', peerId: node.peerId.toString() })

let peers: string[] = []
let traffic: ReturnType<typeof setInterval> | undefined
let seq = 0
const startTraffic = (): void => {
  if (traffic != null || peers.length === 0) return
  traffic = setInterval(() => {
    const to = peers[seq % peers.length]
    const n = seq++
    node.send(to, { op: 'query', p: { domain: 'soak', seq: n } }, { delivery: mode as DeliveryMode }).then(
      (result) => { emit({ event: 'sent', id: result.id, to, status: result.status }) },
      (err: Error) => { emit({ event: 'send-failed', to, error: err.message }) }
    )
  }, 1000 / Number(rate))
}

const heap = setInterval(() => {
  globalThis.gc?.()
  const memory = process.memoryUsage()
  emit({ event: 'heap', heapUsed: memory.heapUsed, arrayBuffers: memory.arrayBuffers, rss: memory.rss, outbox: node.outbox().length })
}, 5000)
const stopSnapshots = scheduleHeapSnapshots(process.env.MOLT_SOAK_INSTANCE ?? `agent-${process.pid}`, emit)

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as { cmd: string, peers?: Array<{ peerId: string, addrs: string[] }> }
  if (command.cmd === 'peers') {
    const self = node.peerId.toString()
    const others = (command.peers ?? []).filter(p => p.peerId !== self)
    Promise.all(others.map(async p => node.libp2p.peerStore.merge(peerIdFromString(p.peerId), { multiaddrs: p.addrs.map(a => multiaddr(a)) })))
      .then(() => {
        peers = others.map(p => p.peerId)
        startTraffic()
      }, (err: Error) => { emit({ event: 'error', error: err.message }) })
  } else if (command.cmd === 'quiet') {
    clearInterval(traffic)
  }
})

process.on('SIGTERM', () => {
  clearInterval(traffic)
  clearInterval(heap)
  stopSnapshots()
  node.stop().finally(() => process.exit(0))
})
