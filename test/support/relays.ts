import { createRelayNode, type RelayNode, type RelayNodeOptions } from '../../src/relay/index.js'

/**
 * A molt relay on 127.0.0.1 with a temp data dir from `dir`; the per-host
 * connection rate limit is raised because every test client comes from
 * loopback. It is pushed to `relays`, which the test stops.
 */
export async function startTestRelay (dir: () => Promise<string>, relays: RelayNode[], options: RelayNodeOptions = {}): Promise<RelayNode> {
  const relay = await createRelayNode({
    dataDir: options.dataDir ?? await dir(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    libp2p: { connectionManager: { inboundConnectionThreshold: 1000 } },
    ...options
  })
  relays.push(relay)
  return relay
}

export const relayAddress = (relay: RelayNode): string => relay.getMultiaddrs()[0].toString()
