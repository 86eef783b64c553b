import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { moltServices, verifyMessage, RequestTimeoutError, type MoltServiceMap, type ReceivedMessage } from '../../src/index.js'

/**
 * moltServices() in an application's own libp2p node: plain createLibp2p()
 * nodes (TCP on 127.0.0.1, no createMoltNode) exchange signed MoltSpeak
 * messages and request → reply through the services alone.
 */
const nodes: Array<Libp2p<MoltServiceMap & { identify: unknown }>> = []
const dirs: string[] = []

async function plainNode (name: string, options: { dataDir?: string, privateKey?: PrivateKey } = {}): Promise<Libp2p<MoltServiceMap & { identify: unknown }>> {
  const dataDir = options.dataDir ?? await mkdtemp(join(tmpdir(), 'molt-services-'))
  dirs.push(dataDir)
  const node = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { dialTimeout: 30_000, inboundUpgradeTimeout: 30_000 },
    services: {
      identify: identify(),
      ...moltServices({ dataDir, agent: { name, org: 'test', capabilities: ['echo'] }, heartbeatInterval: 0 })
    }
  })
  nodes.push(node)
  return node
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async node => node.stop()))
  await Promise.all(dirs.splice(0).map(async dir => rm(dir, { recursive: true, force: true })))
})

describe('moltServices() in a plain libp2p node', () => {
  it('exchanges a signed MoltSpeak message: delivered, in the inbox, verified with the sender key', async () => {
    const alice = await plainNode('alice')
    const bob = await plainNode('bob')
    await alice.dial(bob.getMultiaddrs()[0])
    const arrived = new Promise<ReceivedMessage>(resolve => {
      bob.services.moltEvents.addEventListener('message', (evt: CustomEvent<ReceivedMessage>) => { resolve(evt.detail) }, { once: true })
    })
    const sent = await alice.services.molt.send(bob.peerId, { op: 'query', p: { domain: 'test', intent: 'hello', params: { n: 1 } } }, { sign: true })
    expect(sent.status).toBe('delivered')
    expect(sent.route).toBe('direct')
    const entry = await arrived
    expect(entry.peer).toBe(alice.peerId.toString())
    expect(entry.message.id).toBe(sent.id)
    expect(entry.message.from).toEqual({ agent: 'alice', org: 'test', key: alice.services.moltMessages.agent.key })
    expect(verifyMessage(entry.message)).toBe(true)
    // kept in bob's inbox (LevelDB under the dataDir), not only dispatched
    const inbox = await bob.services.moltInbox.list()
    expect(inbox.map(e => e.message.id)).toEqual([sent.id])
    // bob's card is served by the card service: alice fetches and verifies it
    const card = await alice.services.cards.fetch(bob.peerId)
    expect(card.capabilities.map(c => c.name)).toEqual(['echo'])
  })

  it('request → reply through a handler registered on the services; an unanswered one times out', async () => {
    const alice = await plainNode('alice')
    const bob = await plainNode('bob')
    await alice.dial(bob.getMultiaddrs()[0])
    bob.services.moltHandlers.handle('query', (message) => ({ status: 'success', data: { echo: message.p.params } }))
    const reply = await alice.services.molt.request(bob.peerId, { op: 'query', p: { domain: 'test', intent: 'echo', params: { word: 'molt' } } })
    expect(reply.op).toBe('respond')
    expect(reply.p.data).toEqual({ echo: { word: 'molt' } })
    expect(reply.from.agent).toBe('bob')
    const { rtt } = await alice.services.molt.ping(bob.peerId)
    expect(rtt).toBeGreaterThan(0)
    bob.services.moltHandlers.unhandle('query')
    const silent = await alice.services.molt.request(bob.peerId, { op: 'query', p: { domain: 'test', intent: 'echo' } }, { timeout: 1500 }).catch(err => err)
    expect(silent).toBeInstanceOf(RequestTimeoutError)
  })

  it('the inbox is kept in the dataDir: a new node on the same key and dataDir has it, and refuses the same id again', async () => {
    const key = await generateKeyPair('Ed25519')
    const alice = await plainNode('alice')
    const bob = await plainNode('bob', { privateKey: key })
    await alice.dial(bob.getMultiaddrs()[0])
    const sent = await alice.services.molt.send(bob.peerId, { op: 'query', p: { domain: 'test', intent: 'keep' } }, { delivery: 'exactly-once' })
    expect(sent.status).toBe('delivered')
    await bob.stop()
    nodes.splice(nodes.indexOf(bob), 1)
    const again = await plainNode('bob', { privateKey: key, dataDir: dirs[1] })
    expect((await again.services.moltInbox.list()).map(e => e.message.id)).toEqual([sent.id])
    // the exactly-once id was loaded into the replay window: a re-send under the same id is a duplicate, not a second entry
    await alice.dial(again.getMultiaddrs()[0])
    await alice.services.molt.send(again.peerId, { op: 'query', p: { domain: 'test', intent: 'keep' }, id: sent.id }, { delivery: 'exactly-once' })
    expect((await again.services.moltInbox.list()).map(e => e.message.id)).toEqual([sent.id])
  })
})
