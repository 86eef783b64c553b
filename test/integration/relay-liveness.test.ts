/**
 * A relay that vanishes without closing its connections (power cut, a NAT or
 * firewall dropping the mapping) is noticed by the agents holding
 * reservations on it, and a vanished holder by the relay, through libp2p's
 * connection monitor as molt configures it (src/base-libp2p.ts
 * CONNECTION_MONITOR, src/constants.ts SILENT_PEER_BOUND). Only the ping can
 * notice it here: the TCP sockets stay open and Yamux's keep-alive waits for
 * its pong forever. The test shortens the interval and the timeouts; the
 * rest of molt's monitor settings (enabled, abort on a failed ping) are the
 * defaults under test.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { createRelayNode, type RelayNode } from '../../src/index.js'
import { CONNECTION_MONITOR, baseLibp2pOptions } from '../../src/base-libp2p.js'
import { CONNECTION_PING_INTERVAL, CONNECTION_PING_MAX_TIMEOUT, SILENT_PEER_BOUND } from '../../src/constants.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection } from '@libp2p/interface'
import { TestNetwork, freePort } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'

/**
 * A TCP forwarder to a port on 127.0.0.1 that can turn into a black hole:
 * every socket stays open and every byte is dropped, both ways.
 */
class BlackHole {
  private swallowing = false
  private readonly sockets = new Set<Socket>()
  private server?: Server

  async start (target: number): Promise<number> {
    this.server = createServer((inbound) => {
      const outbound = connect(target, '127.0.0.1')
      for (const [from, to] of [[inbound, outbound], [outbound, inbound]]) {
        this.sockets.add(from)
        from.on('data', (data) => { if (!this.swallowing) to.write(data) })
        from.on('error', () => { to.destroy() })
        from.on('close', () => { this.sockets.delete(from); if (!this.swallowing) to.destroy() })
      }
    })
    await new Promise<void>(resolve => this.server!.listen(0, '127.0.0.1', resolve))
    return (this.server.address() as { port: number }).port
  }

  swallow (): void {
    this.swallowing = true
  }

  async stop (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise(resolve => this.server?.close(resolve) ?? resolve(undefined))
  }
}

/** Resolves when the connection has closed (at once if it already has) */
async function closed (connection: Connection): Promise<void> {
  if (connection.status === 'closed') return
  await new Promise(resolve => { connection.addEventListener('close', resolve, { once: true }) })
}

// pings every 300 ms, answers awaited 3 s: fast, and a loaded machine does not fail a ping by itself
const shortMonitor = { connectionMonitor: { pingInterval: 300, pingTimeout: { minTimeout: 3000, maxTimeout: 3000 } } }

const net = new TestNetwork()
const hole = new BlackHole()
let relay: RelayNode | undefined
afterAll(async () => {
  await net.cleanup()
  await relay?.stop()
  await hole.stop()
})

describe('connection liveness', () => {
  it('the molt monitor pings within the documented bound and aborts on a failed ping; an embedder overrides it field by field', async () => {
    const init = { privateKey: await generateKeyPair('Ed25519'), listen: [], discovery: { mdns: false, bootstrap: [], dht: { enabled: false } } }
    const options = baseLibp2pOptions(init, {})
    expect(options.connectionMonitor).toEqual(CONNECTION_MONITOR)
    expect(options.connectionMonitor?.enabled).not.toBe(false)
    expect(options.connectionMonitor?.abortConnectionOnPingFailure).toBe(true)
    expect(CONNECTION_PING_INTERVAL + (options.connectionMonitor?.pingTimeout?.maxTimeout ?? Infinity)).toBeLessThanOrEqual(SILENT_PEER_BOUND)
    const merged = baseLibp2pOptions({ ...init, extra: { connectionMonitor: { pingInterval: 5, pingTimeout: { minTimeout: 7 } } } }, {})
    expect(merged.connectionMonitor).toEqual({ ...CONNECTION_MONITOR, pingInterval: 5, pingTimeout: { ...CONNECTION_MONITOR.pingTimeout, minTimeout: 7 } })
  })

  it('an agent notices a relay that vanished silently, and the relay drops the vanished holder', async () => {
    const relayPort = await freePort()
    const proxyPort = await hole.start(relayPort)
    relay = await createRelayNode({
      dataDir: await net.dir(),
      listen: [`/ip4/127.0.0.1/tcp/${relayPort}`],
      // only the way through the black hole is known to the agent
      announce: [`/ip4/127.0.0.1/tcp/${proxyPort}`],
      dht: { enabled: false },
      mailbox: false,
      trust: false,
      // the relay's own pinger (src/relay/holder-pings.ts), as fast as the agent's monitor here
      pingIntervalMs: 300,
      pingTimeoutMs: 3000,
      libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
    })
    const relayAddress = `/ip4/127.0.0.1/tcp/${proxyPort}/p2p/${relay.peerId.toString()}`
    const agent = await net.node({ listen: [], relays: [relayAddress], dht: { enabled: false }, heartbeatInterval: 0, libp2p: shortMonitor as any })
    await eventually(() => agent.relays()[0]?.reserved, 30_000, 'a reservation through the forwarder')
    await eventually(() => relay!.stats().reservations === 1, 30_000, 'the reservation at the relay')

    // every connection between the two, as each side sees it: only a failed ping can close them now
    const watched = [...agent.libp2p.getConnections(relay.peerId), ...relay.libp2p.getConnections(agent.peerId)]
    expect(watched.length).toBeGreaterThanOrEqual(2)
    hole.swallow()
    await Promise.all(watched.map(closed))

    // the agent no longer counts the reservation (it retries through the black hole, in vain),
    // and the relay has released the slot
    await eventually(() => agent.relays()[0]?.reserved === false, 30_000, 'the agent to drop the reservation')
    await eventually(() => relay!.stats().reservations === 0, 30_000, 'the relay to release the slot')
    expect(agent.libp2p.getConnections(relay.peerId)).toEqual([])
  }, 90_000)
})
