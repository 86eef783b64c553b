import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'

const net = new TestNetwork()
let a: MoltNode
let b: MoltNode
let c: MoltNode


beforeAll(async () => {
  a = await net.node({ agent: { name: 'alpha', org: 'acme', capabilities: ['translate.text'] }, heartbeatInterval: 200, staleAfter: 1500 })
  b = await net.node({ agent: { name: 'beta', org: 'acme', capabilities: ['code.review'] }, bootstrap: [addressOf(a)] })
  c = await net.node({ agent: { name: 'gamma', org: 'acme', capabilities: ['translate.text', 'code.review'] }, bootstrap: [addressOf(a)] })
})

afterAll(async () => { await net.cleanup() })

describe('presence', () => {
  it('lists connected agents with their card data and heartbeat figures', async () => {
    const beta = await eventually(() => {
      const peer = a.peers().find(p => p.peerId === b.peerId.toString())
      return peer?.name != null && peer.rttMs != null ? peer : undefined
    })
    expect(beta).toMatchObject({ status: 'connected', route: 'direct', name: 'beta', org: 'acme', capabilities: ['code.review'] })
    expect(beta.rttMs).toBeGreaterThan(0)
    expect(typeof beta.load).toBe('number')
    expect(typeof beta.queueDepth).toBe('number')
  })

  it('reports an agent that went away as seen, then stale', async () => {
    expect(a.peers().find(p => p.peerId === b.peerId.toString())?.status).toBe('connected')
    const stopping = Date.now()
    await b.stop()
    const seen = await eventually(() => {
      const peer = a.peers().find(p => p.peerId === b.peerId.toString())
      return peer?.status === 'seen' ? peer : undefined
    })
    // last seen when its connection went away: during the stop, not at some earlier message
    expect(seen.lastSeen).toBeGreaterThanOrEqual(stopping)
    expect(seen.lastSeen).toBeLessThanOrEqual(Date.now())
    await eventually(() => a.peers().find(p => p.peerId === b.peerId.toString() && p.status === 'stale'), 5000)
  })
})

describe('the discover op and cards', () => {
  it('answers discover from local knowledge with verified cards', async () => {
    await eventually(() => a.peers().find(p => p.peerId === c.peerId.toString() && p.name === 'gamma'))
    const reply = await c.request(a.peerId, { op: 'discover', p: { capability: 'translate.text' } })
    expect(reply.op).toBe('respond')
    const ids = (reply.p.agents as Array<{ peer_id: string, card: { sig: string } }>).map(x => x.peer_id)
    // alpha offers it itself, and knows gamma
    expect(ids).toContain(a.peerId.toString())
    expect(ids).toContain(c.peerId.toString())
    expect(reply.p.total).toBe(ids.length)
  })

  it('a discover without a capability gets E_MISSING_FIELD', async () => {
    const reply = await c.request(a.peerId, { op: 'discover', p: {} })
    expect(reply.op).toBe('error')
    expect(reply.p.code).toBe('E_MISSING_FIELD')
  })

  it('fetches, verifies and caches a peer card', async () => {
    const card = await c.card(a.peerId)
    expect(card).toMatchObject({ peer_id: a.peerId.toString(), name: 'alpha', org: 'acme', key: a.moltKey, did: a.did })
    expect(card.capabilities.map(x => x.name)).toEqual(['translate.text'])
    expect(card.addresses.length).toBeGreaterThan(0)
    expect(await c.card(a.peerId)).toBe(card)
  })

  it('updateProfile re-signs the card and refuses invalid names', async () => {
    await a.updateProfile({ description: 'translates' })
    expect(a.ownCard().description).toBe('translates')
    expect((await c.card(a.peerId, { force: true })).description).toBe('translates')
    await expect(a.updateProfile({ name: 'no spaces allowed' })).rejects.toMatchObject({ name: 'ConfigError', field: 'agent.name' })
  })
})
