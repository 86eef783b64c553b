import { describe, it, expect, afterAll } from 'vitest'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { startTestRelay, relayAddress } from '../support/relays.js'
import type { RelayNode, RelayNodeOptions } from '../../src/relay/index.js'
import type { MoltNode, MoltNodeOptions } from '../../src/index.js'
import { routeOver } from '../../src/routing/route.js'
import { encodeRouteRecord, routeKey, signRouteRecord } from '../../src/services/routing-record/index.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'

/**
 * Reaching an agent by its PeerId alone (protocols/routing.md), on 127.0.0.1:
 * A knows only relay R1 and B's PeerId string; B listens nowhere and is
 * reachable only through its relay R2 (R2 bootstrapped from R1). Nothing is
 * copied by hand: A finds B's routing record in the DHT.
 */
const net = new TestNetwork()
const relays: RelayNode[] = []
afterAll(async () => {
  await net.cleanup()
  await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
})

async function relay (options: RelayNodeOptions = {}): Promise<RelayNode> {
  return startTestRelay(async () => net.dir(), relays, { trust: false, ...options })
}

const portOf = (r: RelayNode): number => Number(relayAddress(r).split('/tcp/')[1].split('/')[0])
const circuitVia = (node: MoltNode, r: RelayNode): string | undefined =>
  node.getMultiaddrs().map(String).find(a => a.includes(`/p2p/${r.peerId.toString()}/p2p-circuit`))

/** An agent that listens nowhere (only outbound connections, like one behind NAT) */
async function hiddenAgent (name: string, relay: RelayNode, more: MoltNodeOptions = {}): Promise<MoltNode> {
  return net.node({ listen: [], relays: [relayAddress(relay)], agent: { name }, ...more })
}

/** Resolves with the next `outbox` event of `node` for message `id` */
async function outboxEvent (node: MoltNode, id: string): Promise<{ status: string }> {
  return new Promise(resolve => {
    const listener = (evt: CustomEvent<{ id: string, status: 'delivered' | 'stored' }>): void => {
      if (evt.detail.id !== id) return
      node.removeEventListener('outbox', listener)
      resolve(evt.detail)
    }
    node.addEventListener('outbox', listener)
  })
}

describe('reach an agent by its PeerId alone', () => {
  let r1: RelayNode
  let r2: RelayNode
  let b: MoltNode
  let bDir: string
  let a: MoltNode
  let bKey: Ed25519PrivateKey

  it('B publishes a signed routing record naming its circuit address and mailbox relay', async () => {
    r1 = await relay()
    r2 = await relay({ bootstrap: [relayAddress(r1)] })
    bDir = await net.dir()
    bKey = await generateKeyPair('Ed25519')
    b = await hiddenAgent('b', r2, { dataDir: bDir, privateKey: bKey })
    b.handle('query', (m) => ({ status: 'success', data: m.p }))
    await eventually(() => circuitVia(b, r2), 10_000, 'B reserved on R2')
    const record = await eventually(() => {
      const current = b.libp2p.services.routes.current()
      return current?.circuits.some(c => c.includes(r2.peerId.toString())) === true ? current : undefined
    }, 10_000, 'record with the circuit')
    expect(record.peer).toBe(b.peerId.toString())
    expect(record.addrs).toEqual([]) // listens nowhere: nothing direct to publish
    expect(record.mailboxes.map(m => m.relay)).toEqual([r2.peerId.toString()])
  })

  it('A, which never met B and knows only R1, gets the respond over a relayed connection through R2', async () => {
    a = await hiddenAgent('a', r1)
    // B's record reached both DHT servers, R1 included (R2 learned R1 from its bootstrap)
    await eventually(async () => (await b.libp2p.services.routes.publish()) >= 2, 20_000, 'record on both relays')
    await expect(a.libp2p.peerStore.get(b.peerId)).rejects.toThrow()
    const reply = await a.request(b.peerId.toString(), { op: 'query', p: { domain: 'reach' } }, { timeout: 20_000 })
    expect(reply.op).toBe('respond')
    expect(reply.p.data).toEqual({ domain: 'reach' })
    expect(routeOver(a.libp2p.getConnections(b.peerId))).toEqual({ route: 'relayed', relay: r2.peerId.toString() })
    const sent = await a.send(b.peerId.toString(), { op: 'query', p: { domain: 'again' } })
    expect(sent).toMatchObject({ status: 'delivered', route: 'relayed', relay: r2.peerId.toString() })
  })

  it('DHT servers refuse a record for B signed by another key, and an older record of B replayed over the newer', async () => {
    const genuine = b.libp2p.services.routes.current()!
    const mallory = await generateKeyPair('Ed25519')
    const forged = await signRouteRecord({ ...genuine, seq: genuine.seq + 1_000_000, circuits: [], mailboxes: [] }, mallory)
    const dht = a.libp2p.services.dht as { put: (k: Uint8Array, v: Uint8Array) => AsyncIterable<{ name: string, messageName?: string }> }
    const accepted = async (value: Uint8Array): Promise<number> => {
      let stored = 0
      for await (const event of dht.put(routeKey(b.peerId), value)) if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') stored++
      return stored
    }
    expect(await accepted(encodeRouteRecord(forged))).toBe(0)
    const older = await signRouteRecord({ ...genuine, seq: genuine.seq - 1, circuits: [] }, bKey)
    const probe = await hiddenAgent('probe', r2)
    expect(await accepted(encodeRouteRecord(older))).toBe(0)
    const found = await probe.libp2p.services.routes.lookup(b.peerId)
    expect(found?.seq).toBeGreaterThanOrEqual(genuine.seq)
    expect(found?.circuits.length).toBeGreaterThan(0)
    await probe.stop()
  })

  it('a one-off sender (fresh, bootstraps from its relay, publishes no record of its own) delivers to B by PeerId at once', async () => {
    const once = await hiddenAgent('once', r1, { publishRoute: false })
    const sent = await once.send(b.peerId.toString(), { op: 'query', p: { domain: 'one-off' } })
    expect(sent).toMatchObject({ status: 'delivered', route: 'relayed', relay: r2.peerId.toString() })
    expect(once.libp2p.services.routes.current()).toBeUndefined()
    await once.stop()
  })

  it('B offline: a sender that never met it gets `stored` at R2, sealed; B restarts and finds it in its inbox', async () => {
    await b.stop()
    const c = await hiddenAgent('c', r1)
    const sent = await c.send(b.peerId.toString(), { op: 'query', p: { domain: 'secret-payload-42' } })
    expect(sent).toMatchObject({ status: 'stored', route: 'mailbox', relay: r2.peerId.toString() })
    expect(r2.mailbox?.stats().messages).toBeGreaterThan(0)
    // the relay holds ciphertext only
    for (const r of [r1, r2]) expect(await grepDir(r.dataDir, 'secret-payload-42')).toBe(false)

    // a sender without the DHT, given only B's circuit address: the relay it names is B's mailbox
    const d = await net.node({ listen: [], dht: { enabled: false }, agent: { name: 'd' } })
    const viaCircuit = await d.send(`${relayAddress(r2)}/p2p-circuit/p2p/${b.peerId.toString()}`, { op: 'query', p: { domain: 'via-circuit' } })
    expect(viaCircuit).toMatchObject({ status: 'stored', relay: r2.peerId.toString() })

    b = await hiddenAgent('b', r2, { dataDir: bDir, privateKey: bKey })
    const entry = await eventually(async () => (await b.inbox()).find(e => e.message.id === sent.id), 20_000, 'stored message in B\'s inbox')
    expect(entry.message.p).toEqual({ domain: 'secret-payload-42' })
    expect(entry.route).toBe('mailbox')
    await eventually(async () => (await b.inbox()).some(e => e.message.id === viaCircuit.id), 20_000, 'the message sent to the circuit address')
  })

  it('both relays down: `queued`; relays back on their addresses: delivered with no action by the user', async () => {
    b.handle('query', (m) => ({ status: 'success', data: m.p }))
    await eventually(() => circuitVia(b, r2), 10_000, 'B reserved on R2 again')
    const [p1, p2] = [portOf(r1), portOf(r2)]
    const [d1, d2] = [r1.dataDir, r2.dataDir]
    await Promise.all([r1.stop({ drainMs: 0 }), r2.stop({ drainMs: 0 })])
    await eventually(() => a.libp2p.getConnections(b.peerId).length === 0, 10_000, 'A lost B')

    const sent = await a.send(b.peerId.toString(), { op: 'query', p: { domain: 'later' } })
    expect(sent.status).toBe('queued')
    expect(sent.refusals?.map(r => r.relay)).toContain(r2.peerId.toString())
    const outcome = outboxEvent(a, sent.id)

    r1 = await relay({ dataDir: d1, listen: [`/ip4/127.0.0.1/tcp/${p1}`] })
    r2 = await relay({ dataDir: d2, listen: [`/ip4/127.0.0.1/tcp/${p2}`], bootstrap: [relayAddress(r1)] })
    expect(await outcome).toMatchObject({ status: expect.stringMatching(/^(delivered|stored)$/) })
    await eventually(async () => (await b.inbox()).some(e => e.message.id === sent.id), 30_000, 'the queued message in B\'s inbox')
  }, 120_000)
})

/** Whether any file under `dir` contains `text` */
async function grepDir (dir: string, text: string): Promise<boolean> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    const content = await readFile(join(entry.parentPath, entry.name)).catch(() => Buffer.alloc(0))
    if (content.includes(text)) return true
  }
  return false
}
