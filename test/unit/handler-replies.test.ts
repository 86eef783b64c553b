import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { HandlerRegistry, type HandlerRegistryComponents } from '../../src/node/handlers.js'
import type { MoltMessage } from '../../src/moltspeak/index.js'

/**
 * Which replies the handler registry queues for a requester that may have
 * left: a heartbeat's pong is best-effort (worth something only while its
 * ping waits: a one-off `molt ping` used to leave a pong in the agent's outbox,
 * retried for 7 days against a port long gone); an application's answer keeps
 * the default delivery (at-least-once: it waits in the outbox).
 */
async function registry (): Promise<{ registry: HandlerRegistry, sent: Array<{ op: string, delivery?: string }> }> {
  const sent: Array<{ op: string, delivery?: string }> = []
  const components = {
    logger: defaultLogger(),
    speak: { stats: () => ({ inFlight: 0 }) },
    cards: { own: () => ({ capabilities: [] }) },
    discovery: { localMatches: () => [] },
    molt: { send: async (_peer: unknown, init: { op: string }, options?: { delivery?: string }) => { sent.push({ op: init.op, delivery: options?.delivery }) } },
    moltEvents: { isStopped: false, dispatchEvent: () => true, hasMessageListeners: () => false, hasReader: () => false },
    moltMessages: { agent: { agent: 'me', org: 'acme' }, errorFor: (_peer: string, p: unknown) => p, noteHello: () => {} },
    moltRequests: { settle: () => {} },
    moltReceipts: { accept: () => {} }
  } as unknown as HandlerRegistryComponents
  return { registry: new HandlerRegistry(components), sent }
}

function message (op: MoltMessage['op'], p: Record<string, unknown>, ext?: MoltMessage['ext']): MoltMessage {
  return { v: '0.1', id: crypto.randomUUID(), ts: Date.now(), op, from: { agent: 'them', org: 'acme' }, to: { agent: 'me', org: 'acme' }, p, cls: 'int', ...(ext != null ? { ext } : {}) }
}

async function dispatch (r: HandlerRegistry, msg: MoltMessage, cursor: number): Promise<void> {
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const entry = { cursor, receivedAt: Date.now(), peer: peer.toString(), route: 'direct', message: msg }
  r.dispatch(entry as any, { message: msg, json: JSON.stringify(msg), peer, route: 'direct' } as any)
}

describe('handler registry replies', () => {
  it('answers a heartbeat ping with a best-effort pong, and an application request with the default delivery', async () => {
    const { registry: r, sent } = await registry()
    r.handle('query', () => ({ status: 'success', data: 1 }))
    await dispatch(r, message('ping', { nonce: 'n1' }), 0)
    await dispatch(r, message('query', { domain: 'x' }), 1)
    await expect.poll(() => sent.length).toBe(2)
    expect(sent).toContainEqual({ op: 'pong', delivery: 'best-effort' })
    expect(sent).toContainEqual({ op: 'respond', delivery: undefined })
  })

  it('a ping sent exactly-once (kept in the inbox) gets its pong with the default delivery', async () => {
    const { registry: r, sent } = await registry()
    await dispatch(r, message('ping', { nonce: 'n2' }, { molt: { delivery: 'exactly-once' } }), 3)
    await expect.poll(() => sent.length).toBe(1)
    expect(sent[0]).toEqual({ op: 'pong', delivery: undefined })
  })
})
