/**
 * The far end of the speak benchmark, run as its own process so sender and
 * receiver each get a core: a molt node that answers `query` with `respond`,
 * plus raw js-libp2p sink and echo protocols — on the molt node's libp2p, and
 * (not over a relay) on a stock js-libp2p node of their own (TCP, Noise, Yamux
 * as their packages ship: rawLibp2p() in protocol.ts), printed as
 * `rawAddress`: the raw baselines measure js-libp2p, not molt's own
 * transport settings (src/transport/noise.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Uint8ArrayList } from 'uint8arraylist'
import { createMoltNode } from '../src/index.js'
import type { Libp2p } from '@libp2p/interface'
import { RAW_ECHO_PROTOCOL, RAW_LATE_ECHO_PROTOCOL, RAW_SINK_PROTOCOL, rawLibp2p } from './protocol.js'

// argv[2]: a relay multiaddr → listen nowhere directly, only through that relay
const relay = process.argv[2]
const dataDir = await mkdtemp(join(tmpdir(), 'molt-bench-peer-'))
const node = await createMoltNode({
  dataDir,
  listen: relay != null ? [] : ['/ip4/127.0.0.1/tcp/0'],
  relays: relay != null ? [relay] : [],
  heartbeatInterval: 0,
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
})
if (relay != null) {
  while (!node.getMultiaddrs().some(ma => ma.toString().includes('/p2p-circuit'))) await new Promise(resolve => setTimeout(resolve, 50))
}
node.handle('query', (message) => ({ status: 'success', data: message.p.data }))

async function handleRaw (libp2p: Libp2p): Promise<void> {
  // sink: decode length-prefixed messages (a varint and 1 KiB each, as a real
  // protocol must frame them); after the announced count, answer one byte
  await libp2p.handle(RAW_SINK_PROTOCOL, (stream) => {
    const buffer = new Uint8ArrayList()
    let expected = -1
    let received = 0
    stream.addEventListener('message', (evt) => {
      buffer.append(evt.data)
      if (expected < 0) {
        if (buffer.byteLength < 4) return
        expected = buffer.getUint32(0)
        buffer.consume(4)
      }
      for (;;) {
        if (buffer.byteLength < 1) break
        let length = 0
        let shift = 0
        let offset = 0
        let byte
        do {
          if (offset >= buffer.byteLength) return
          byte = buffer.get(offset++)
          length += (byte & 0x7f) * 2 ** shift
          shift += 7
        } while ((byte & 0x80) !== 0)
        if (buffer.byteLength < offset + length) break
        buffer.consume(offset + length)
        received++
      }
      // once: a sender of 64 messages per send() may send a few past the count (30,000 is no multiple of 64),
      // arriving after the stream began to close (a send() then throws and the peer process died)
      if (received >= expected && stream.writeStatus === 'writable') {
        stream.send(Uint8Array.from([1]))
        stream.close().catch(() => {})
      }
    })
  }, { maxInboundStreams: 64 })

  // echo: send every chunk straight back (the relay bench echoes over a relayed, limited, connection too)
  await libp2p.handle(RAW_ECHO_PROTOCOL, (stream) => {
    stream.addEventListener('message', (evt) => { stream.send(evt.data) })
    stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}) })
  }, { maxInboundStreams: 64, runOnLimitedConnection: true })

  // late echo: the same, answered on the next macrotask (the relay bench compares the two)
  await libp2p.handle(RAW_LATE_ECHO_PROTOCOL, (stream) => {
    stream.addEventListener('message', (evt) => { const data = evt.data; setImmediate(() => { stream.send(data) }) })
    stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}) })
  }, { maxInboundStreams: 64, runOnLimitedConnection: true })
}
await handleRaw(node.libp2p)
const raw = relay == null ? await rawLibp2p(['/ip4/127.0.0.1/tcp/0']) : undefined
if (raw != null) await handleRaw(raw)

const address = node.getMultiaddrs().map(String).find(a => relay == null || a.includes('/p2p-circuit'))
process.stdout.write(JSON.stringify({ address, rawAddress: raw?.getMultiaddrs()[0]?.toString() }) + '\n')

process.stdin.resume()
process.stdin.on('end', () => {
  Promise.all([node.stop(), raw?.stop()]).then(async () => rm(dataDir, { recursive: true, force: true })).finally(() => process.exit(0))
})
