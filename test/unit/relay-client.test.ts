import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { relayClient } from '../../src/services/relay-client/index.js'

/** Components whose dial to the relay never completes: it only ends when its signal aborts */
function stalledDial (): { components: any, signals: AbortSignal[] } {
  const signals: AbortSignal[] = []
  const components = {
    peerStore: { merge: async () => {} },
    transportManager: { getListeners: () => [], listen: async () => await new Promise(() => {}) },
    connectionManager: {
      openConnection: async (_addr: unknown, options: { signal: AbortSignal }) => {
        signals.push(options.signal)
        return await new Promise((_resolve, reject) => {
          options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true })
        })
      }
    },
    addressManager: { getAddresses: () => [] },
    events: new EventTarget(),
    logger: defaultLogger()
  }
  return { components, signals }
}

async function relayAddress (): Promise<string> {
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return `/ip4/127.0.0.1/tcp/4001/p2p/${peer.toString()}`
}

describe('relay client reservation attempts', () => {
  it('aborts the attempt it gives up on (the dial gets the signal), not just stops waiting', async () => {
    const { components, signals } = stalledDial()
    const client = relayClient({ relays: [await relayAddress()], reserveTimeout: 50, checkInterval: 60_000 })(components)
    await client.start()
    try {
      await client.maintain()
      expect(signals).toHaveLength(1)
      expect(signals[0].aborted).toBe(true)
      expect(signals[0].reason).toMatchObject({ name: 'ReservationTimeoutError' })
      expect(client.relays()[0]).toMatchObject({ reserved: false, failures: 1, lastError: expect.stringMatching(/within 50 ms/) })
    } finally {
      await client.stop()
    }
  })

  it('stopping the service aborts an attempt in progress', async () => {
    const { components, signals } = stalledDial()
    const client = relayClient({ relays: [await relayAddress()], reserveTimeout: 60_000, checkInterval: 60_000 })(components)
    await client.start()
    const pass = client.maintain()
    while (signals.length === 0) await new Promise(resolve => setImmediate(resolve))
    await client.stop()
    await pass
    expect(signals[0].reason).toMatchObject({ name: 'RelayClientStoppedError' })
  })
})
