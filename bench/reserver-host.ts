/**
 * argv = JSON { relay, count, stockPing? }: `count` minimal libp2p clients (TCP, Noise,
 * Yamux without keep-alive, identify, ping, circuit relay transport, molt's
 * connection monitor, as molt agents run them)
 * that each hold a reservation on
 * the relay. Prints {"reserved":n} when all hold one; exits when stdin closes.
 */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { CONNECTION_MONITOR } from '../src/base-libp2p.js'
import { YAMUX_KEEP_ALIVE } from '../src/constants.js'

// stockPing: ping the relay every 10 s with Yamux keep-alives every 30 s, as stock js-libp2p clients (and molt agents before issue #19) do
const { relay, count, stockPing } = JSON.parse(process.argv[2]) as { relay: string, count: number, stockPing?: boolean }
const clients: Libp2p[] = []
// small batches, each client retried: on a loaded machine a reservation can miss the client's 10 s deadline
const batch = 10
const client = async (attempt = 1): Promise<Libp2p> => {
  const node = await createLibp2p({
    start: false,
    addresses: { listen: [`${relay}/p2p-circuit`] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ enableKeepAlive: stockPing === true || YAMUX_KEEP_ALIVE })],
    services: { identify: identify(), ping: ping() },
    // pinging the relay as molt agents do (once a minute), but a client overloaded by its
    // 249 neighbours in this process must not drop its own reservation over a late pong
    connectionMonitor: stockPing === true ? { abortConnectionOnPingFailure: false } : { ...CONNECTION_MONITOR, abortConnectionOnPingFailure: false }
  })
  try {
    await node.start()
    return node
  } catch (err) {
    // a failed start leaves its connection to the relay open: close it before trying again
    await Promise.resolve(node.stop()).catch(() => {})
    if (attempt >= 20) throw err
    return client(attempt + 1)
  }
}
for (let i = 0; i < count; i += batch) {
  clients.push(...await Promise.all(Array.from({ length: Math.min(batch, count - i) }, async () => client())))
}
const reserved = clients.filter(c => c.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))).length
process.stdout.write(JSON.stringify({ reserved }) + '\n')
process.stdin.resume()
process.stdin.on('end', () => {
  Promise.allSettled(clients.map(async c => c.stop())).finally(() => process.exit(0))
})
