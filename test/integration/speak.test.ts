import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createPrivateKey } from 'node:crypto'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { rawSpeak, closeRawStreams, RawSpeakStream, encodeFrame, FRAME_REJECT } from '../support/raw-speak.js'
import {
  createMessage, signMessage, query, task, stream, tool, consent, hello, errorPayload, respond,
  type MoltNode, type MoltMessage, type Op
} from '../../src/index.js'

const net = new TestNetwork()
let alice: MoltNode
let bob: MoltNode
let carol: MoltNode

beforeAll(async () => {
  alice = await net.node({ agent: { name: 'alice', org: 'acme' } })
  bob = await net.node({ agent: { name: 'bob', org: 'widgets' } })
  carol = await net.node({ agent: { name: 'carol', org: 'acme' } })
  await net.introduce()
  // bob answers every request-like op with an echo of its payload
  for (const op of ['query', 'task', 'stream', 'tool', 'consent', 'hello', 'verify', 'discover', 'register'] as Op[]) {
    bob.handle(op, (message) => respond({ status: 'success', data: { echo: message.p, op: message.op } }) as Record<string, unknown>)
  }
})

afterEach(async () => { await closeRawStreams() })

afterAll(async () => { await net.cleanup() })

async function waitForInbox (node: MoltNode, predicate: (m: MoltMessage) => boolean, timeout = 5000): Promise<MoltMessage> {
  const deadline = Date.now() + timeout
  while (Date.now() < deadline) {
    const found = (await node.inbox({ limit: 10_000 })).find(e => predicate(e.message))
    if (found != null) return found.message
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('message never reached the inbox')
}

describe('round trip of every op over /molt/speak/1.0.0', () => {
  const requests: Array<[Op, Record<string, unknown>]> = [
    ['query', query({ domain: 'weather', intent: 'forecast', params: { location: 'Tokyo' } }) as Record<string, unknown>],
    ['task', task({ action: 'create', task_id: 't-1', description: 'summarise' }) as Record<string, unknown>],
    ['stream', stream({ action: 'start', stream_id: 's-1' }) as Record<string, unknown>],
    ['tool', tool({ action: 'invoke', tool: 'calc', input: { expr: '1+1' } }) as Record<string, unknown>],
    ['consent', consent({ action: 'request', data_types: ['email'], purpose: 'newsletter' }) as Record<string, unknown>],
    ['hello', hello({ capabilities: ['translate.text'] } as any) as Record<string, unknown>],
    ['verify', { challenge: 'ab'.repeat(32), timestamp: Date.now() }],
    ['discover', { capability: 'translate.text' }],
    ['register', { action: 'create', profile: { name: 'alice' } }]
  ]
  for (const [op, p] of requests) {
    it(`${op} → respond correlated by re`, async () => {
      const reply = await alice.request(bob.peerId, { op, p }, { timeout: 5000 })
      expect(reply.op).toBe('respond')
      expect(reply.p.status).toBe('success')
      expect((reply.p.data as any).echo).toEqual(p)
      expect((reply.p.data as any).op).toBe(op)
      expect(reply.from.agent).toBe('bob')
      expect(reply.to.agent).toBe('alice')
    })
  }

  it('ping → pong with the nonce echoed, load and queue depth', async () => {
    const { rtt, pong } = await alice.ping(bob.peerId)
    expect(rtt).toBeGreaterThan(0)
    expect(pong.op).toBe('pong')
    expect(pong.p.status).toBe('alive')
    expect(typeof pong.p.load).toBe('number')
    expect(typeof pong.p.queue_depth).toBe('number')
  })

  it('respond and error messages are delivered to the inbox', async () => {
    const re = createMessage({ op: 'query', from: { agent: 'x', org: 'y' }, to: { agent: 'z', org: 'w' }, p: { domain: 'd' } }).id
    const r1 = await alice.send(bob.peerId, { op: 'respond', re, p: respond({ status: 'partial', data: [1, 2] }) as Record<string, unknown> })
    const r2 = await alice.send(bob.peerId, { op: 'error', re, p: errorPayload('E_TASK_FAILED', 'nope') as unknown as Record<string, unknown> })
    expect(r1.delivered).toBe(true)
    expect(r1.route).toBe('direct')
    expect((await waitForInbox(bob, m => m.id === r1.id)).p.status).toBe('partial')
    expect((await waitForInbox(bob, m => m.id === r2.id)).p.code).toBe('E_TASK_FAILED')
  })

  it('a handler that throws answers with an error reply', async () => {
    carol.handle('task', () => { throw new Error('disk on fire') })
    const reply = await alice.request(carol.peerId, { op: 'task', p: task({ action: 'create', task_id: 't-2' }) as Record<string, unknown> })
    expect(reply.op).toBe('error')
    expect(reply.p.code).toBe('E_TASK_FAILED')
    expect(reply.p.message).toContain('disk on fire')
  })

  it('a multiaddr string works as the peer address', async () => {
    const addr = bob.getMultiaddrs()[0].toString()
    const reply = await carol.request(addr, { op: 'query', p: { domain: 'x' } })
    expect(reply.re).toBeDefined()
  })

  it('pipelines many messages on one stream and acknowledges them all', async () => {
    const sends = Array.from({ length: 2000 }, async (_, i) => alice.send(carol.peerId, { op: 'stream', p: stream({ action: 'chunk', stream_id: 'bulk', seq: i, data: 'x'.repeat(100) } as any) as Record<string, unknown> }))
    const results = await Promise.all(sends)
    expect(results.every(r => r.delivered)).toBe(true)
    const inbox = (await carol.inbox({ limit: 10_000 })).filter(e => e.message.p.stream_id === 'bulk')
    expect(inbox.map(e => e.message.p.seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i))
    // one long-lived outbound stream per peer, not one per message
    const streams = alice.libp2p.getConnections(carol.peerId).flatMap(c => c.streams).filter(s => s.protocol?.startsWith('/molt/speak/') === true && s.direction === 'outbound')
    expect(streams.length).toBe(1)
  })
})

describe('signatures and sender authentication', () => {
  it('a signed message verifies and is delivered', async () => {
    const result = await alice.send(bob.peerId, { op: 'query', p: { domain: 'signed' } }, { sign: true })
    expect(result.message.sig).toMatch(/^ed25519:/)
    const got = await waitForInbox(bob, m => m.id === result.id)
    expect(got.sig).toBe(result.message.sig)
  })

  it('a tampered payload is refused with E_SIGNATURE', async () => {
    const raw = await rawSpeak(alice, bob)
    const signed = signMessage(createMessage({ op: 'query', from: alice.agent, to: bob.agent, p: { domain: 'original' } }), aliceSigningKey())
    raw.message(1, { ...signed, p: { domain: 'tampered' } })
    const [frame] = await raw.until(f => f.length > 0)
    expect(frame.type).toBe(FRAME_REJECT)
    const reply = RawSpeakStream.rejection(frame)
    expect(reply.op).toBe('error')
    expect(reply.re).toBe(signed.id)
    expect(reply.p.code).toBe('E_SIGNATURE')
  })

  it('a signature by another key is refused with E_SIGNATURE', async () => {
    const other = await generateKeyPair('Ed25519')
    const otherKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), other.raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
    const raw = await rawSpeak(alice, bob)
    raw.message(1, signMessage(createMessage({ op: 'query', from: alice.agent, to: bob.agent, p: { domain: 'x' } }), otherKey))
    const [frame] = await raw.until(f => f.length > 0)
    expect(RawSpeakStream.rejection(frame).p.code).toBe('E_SIGNATURE')
  })

  it('from.key that is not the authenticated peer is refused with E_AUTH_FAILED', async () => {
    const raw = await rawSpeak(alice, bob)
    // alice claims to be carol
    raw.message(1, createMessage({ op: 'query', from: carol.agent, to: bob.agent, p: { domain: 'x' } }))
    const [frame] = await raw.until(f => f.length > 0)
    const reply = RawSpeakStream.rejection(frame)
    expect(reply.p.code).toBe('E_AUTH_FAILED')
    expect(reply.p.field).toBe('from.key')
  })

  it('a node that requires signatures refuses unsigned messages and accepts signed ones', async () => {
    const strict = await net.node({ requireSignatures: true })
    await net.introduce()
    await expect(alice.send(strict.peerId, { op: 'query', p: { domain: 'x' } })).rejects.toMatchObject({ name: 'MoltSpeakError', code: 'E_SIGNATURE' })
    const ok = await alice.send(strict.peerId, { op: 'query', p: { domain: 'x' } }, { sign: true })
    expect(ok.delivered).toBe(true)
  })
})

describe('expiry and replay', () => {
  it('an expired message is not delivered and is reported as expired', async () => {
    const before = (await bob.inbox({ limit: 100_000 })).length
    await expect(alice.send(bob.peerId, { op: 'query', p: { domain: 'late' }, exp: Date.now() - 1000 }))
      .rejects.toMatchObject({ code: 'E_TIMEOUT', field: 'exp' })
    const after = await bob.inbox({ limit: 100_000 })
    expect(after.length).toBe(before)
  })

  it('a replayed id within the window is acknowledged but delivered once', async () => {
    const seen: string[] = []
    const listener = (evt: CustomEvent): void => { seen.push(evt.detail.message.id) }
    bob.addEventListener('message', listener)
    const first = await alice.send(bob.peerId, { op: 'query', p: { domain: 'once' } })
    const again = await alice.send(bob.peerId, { op: 'query', p: { domain: 'once' }, id: first.id })
    expect(again.delivered).toBe(true)
    // a marker after it on the same stream: a second copy would have been dispatched before the marker
    const marker = await alice.send(bob.peerId, { op: 'query', p: { domain: 'marker' } })
    await eventually(() => seen.includes(marker.id), 10_000, 'the marker message')
    bob.removeEventListener('message', listener)
    expect(seen.filter(id => id === first.id)).toHaveLength(1)
    expect((await bob.inbox({ limit: 100_000 })).filter(e => e.message.id === first.id)).toHaveLength(1)
  })

  it('a message from far in the future is refused', async () => {
    await expect(alice.send(bob.peerId, { op: 'query', p: { domain: 'x' }, ...{ ts: Date.now() + 3_600_000 } } as any))
      .rejects.toMatchObject({ code: 'E_INVALID_PARAM' })
  })
})

/** The private key alice signs with, read back from her key file through the SDK's identity module */
let cachedAliceKey: ReturnType<typeof createPrivateKey> | undefined
function aliceSigningKey (): ReturnType<typeof createPrivateKey> {
  if (cachedAliceKey == null) {
    const raw = (alice.libp2p as any).components?.privateKey?.raw ?? (alice as any).identity.privateKey.raw
    cachedAliceKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' })
  }
  return cachedAliceKey
}

export { encodeFrame }
