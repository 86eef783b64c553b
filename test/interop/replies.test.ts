import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMessage, hello, MoltSpeakError, MOLT_EXTENSION, type MoltMessage, type MoltNode } from '../../src/index.js'
import { TestNetwork } from '../support/nodes.js'
import { closeRawStreams, rawSpeak } from '../support/raw-speak.js'

/*
 * Issue #16: replies that validate (a `pii` request no longer gets a `pii`
 * reply without pii_meta) and molt's extension ops and codes only for peers
 * that speak them (a `hello` listing extensions without molt's marks a peer
 * as plain v0.1).
 */

const net = new TestNetwork()
let alice: MoltNode
let bob: MoltNode

const PII_META = { types: ['email'], consent: { granted_by: 'user:jane', purpose: 'support', proof: 'tok-1' } } as MoltMessage['pii_meta']

beforeAll(async () => {
  alice = await net.node({ agent: { name: 'alice', org: 'acme' } })
  bob = await net.node({ agent: { name: 'bob', org: 'widgets' } })
  await net.introduce()
})
afterEach(async () => { await closeRawStreams() })
afterAll(async () => { await net.cleanup() })

async function inboxHas (node: MoltNode, predicate: (m: MoltMessage) => boolean, timeout = 5000): Promise<MoltMessage> {
  const deadline = Date.now() + timeout
  for (;;) {
    const found = (await node.inbox({ limit: 10_000 })).find(e => predicate(e.message))
    if (found != null) return found.message
    if (Date.now() > deadline) throw new Error('not in the inbox')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe('replies to pii requests', () => {
  it('the automatic reply to a cls "pii" request is valid: conf, not pii without pii_meta (it was refused E_CONSENT before)', async () => {
    bob.handle('query', () => ({ status: 'success', data: { ok: true } }))
    const reply = await alice.request(bob.peerId, { op: 'query', cls: 'pii', pii_meta: PII_META, p: { domain: 'crm' } }, { timeout: 5000 })
    expect(reply.op).toBe('respond')
    expect(reply.cls).toBe('conf')
    expect(reply.pii_meta).toBeUndefined()
  })

  it('a handler that gives its own pii_meta replies pii', async () => {
    bob.handle('query', () => ({ reply: { op: 'respond', p: { status: 'success' }, cls: 'pii', pii_meta: PII_META } }))
    const reply = await alice.request(bob.peerId, { op: 'query', cls: 'pii', pii_meta: PII_META, p: { domain: 'crm' } }, { timeout: 5000 })
    expect(reply.cls).toBe('pii')
    expect(reply.pii_meta).toEqual(PII_META)
  })

  it('the delivery receipt of a pii message arrives (it copied pii without pii_meta)', async () => {
    const sent = await alice.send(bob.peerId, { op: 'query', cls: 'pii', pii_meta: PII_META, p: { domain: 'crm' } }, { receipt: true, delivery: 'best-effort' })
    const receipt = await alice.receipt(sent.id, { timeout: 5000 })
    expect(receipt.message.cls).toBe('conf')
  })
})

describe('extension ops and codes only for peers that speak them', () => {
  it('answers a hello with its own, listing the molt extension; a hello that answers gets no answer', async () => {
    const raw = await rawSpeak(alice, bob)
    const greeting = createMessage({ op: 'hello', from: alice.agent, to: bob.agent, p: hello({ capabilities: [], extensions: [MOLT_EXTENSION] }) })
    raw.message(1, greeting)
    const answer = await inboxHas(alice, m => m.op === 'hello' && m.re === greeting.id)
    expect(answer.p.extensions).toEqual([MOLT_EXTENSION])
    expect(answer.p.protocol_versions).toEqual(['0.1'])
    // alice's node did not answer bob's answer: no hello loop
    await bob.ping(alice.peerId, { timeout: 5000 })
    expect((await bob.inbox({ limit: 10_000 })).filter(e => e.message.op === 'hello' && e.message.re === answer.id)).toEqual([])
  })

  it('a peer whose hello lists no molt extension gets no ping, and schema error codes instead of extension codes', async () => {
    bob.handle('query', () => { throw new MoltSpeakError('E_AGENT_NOT_FOUND', 'no agent named carol here') })
    const molt = await alice.request(bob.peerId, { op: 'query', p: { domain: 'who' } }, { timeout: 5000 })
    expect(molt.p.code).toBe('E_AGENT_NOT_FOUND')

    const raw = await rawSpeak(alice, bob)
    raw.message(1, createMessage({ op: 'hello', from: alice.agent, to: bob.agent, p: hello({ capabilities: ['query'], extensions: [] }) }))
    await raw.until(frames => frames.length > 0)
    await expect(bob.ping(alice.peerId, { timeout: 5000 })).rejects.toMatchObject({ code: 'E_CAPABILITY', message: /ping is a molt extension/ })
    const plain = await alice.request(bob.peerId, { op: 'query', p: { domain: 'who' } }, { timeout: 5000 })
    expect(plain.p).toMatchObject({ code: 'E_TASK_FAILED', category: 'execution', context: { molt_code: 'E_AGENT_NOT_FOUND' } })

    // a later hello with the extension lifts it
    raw.message(2, createMessage({ op: 'hello', from: alice.agent, to: bob.agent, p: hello({ capabilities: [], extensions: [MOLT_EXTENSION] }) }))
    await raw.until(frames => frames.filter(f => f.type === 2).length > 1 || frames.some(f => f.seq === 2))
    const { pong } = await bob.ping(alice.peerId, { timeout: 5000 })
    expect(pong.op).toBe('pong')
  })
})
