import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'

/** The protocol echoClient() answers: every chunk sent straight back */
export const ECHO = '/molt-test/echo/1.0.0'

/**
 * A stock libp2p node on 127.0.0.1 (TCP, Noise, Yamux, identify, the circuit
 * relay transport) answering ECHO, over relayed connections too; with
 * `relay`, it listens through it (reserves there). Started; the caller stops it.
 */
export async function echoClient (relay?: string): Promise<Libp2p> {
  const node = await createLibp2p({
    start: false,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...(relay != null ? [`${relay}/p2p-circuit`] : [])] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  await node.handle(ECHO, async (stream) => {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  }, { runOnLimitedConnection: true })
  await node.start()
  return node
}
