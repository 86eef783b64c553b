/**
 * Issue #15 findings 1 and 3, decoder by decoder: JSON nested past 64 levels
 * is refused by its depth (the named error says so) before JSON.parse, in
 * the mailbox frames (one 8 MiB frame of `[` at a real relay), the sealed
 * message a mailbox client opens, cards fetched from a peer, trust gossip
 * records and sync frames, local API bodies and config.json. Each test
 * fails on the code before the pre-scan (the decoders parsed such input and
 * failed later, on something else, or accepted it).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { streamPair, lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { TestNetwork } from '../support/nodes.js'
import { loopbackOnly } from '../support/attack.js'
import { apiScene, type ApiScene } from '../support/api.js'
import { deepJsonText } from '../fuzz/support.js'
import { createRelayNode, type RelayNode } from '../../src/relay/index.js'
import { FrameDecoder } from '../../src/services/mailbox/frames.js'
import { PROTOCOL as MAILBOX_PROTOCOL, MAX_FRAME_BYTES } from '../../src/services/mailbox/constants.js'
import { encodeFrame as encodeCardFrame } from '../../src/services/card/frame.js'
import { PROTOCOL as CARD_PROTOCOL } from '../../src/services/card/constants.js'
import { decodeAttestation } from '../../src/services/trust/attestation.js'
import { readFrame as readSyncFrame } from '../../src/services/trust/sync.js'
import { loadConfig } from '../../src/config/index.js'
import { parseMessage, validateMessage, createMessage } from '../../src/moltspeak/index.js'

const DEEP = 20_000
const TOO_DEEP = /deeper than 64/
const enc = new TextEncoder()
const net = new TestNetwork()

afterAll(async () => {
  await net.cleanup()
})

function varint (n: number): Uint8Array {
  const out: number[] = []
  do { let b = n & 0x7f; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b) } while (n > 0)
  return Uint8Array.from(out)
}

describe('mailbox', () => {
  let relay: RelayNode
  beforeAll(async () => {
    relay = await createRelayNode({ dataDir: await net.dir(), listen: ['/ip4/127.0.0.1/tcp/0'], libp2p: { connectionGater: loopbackOnly } })
  })
  afterAll(async () => { await relay?.stop({ drainMs: 0 }) })

  it('a relay answers one 8 MiB frame of `[` with error rid 0 naming the depth, and keeps serving', async () => {
    const client = await net.node({ agent: { name: 'mallory', org: 'evil' }, libp2p: { connectionGater: loopbackOnly } })
    const connection = await client.libp2p.dial(relay.getMultiaddrs()[0])
    const stream: Stream = await connection.newStream(MAILBOX_PROTOCOL)
    const decoder = new FrameDecoder(MAX_FRAME_BYTES)
    const answers: Array<Record<string, unknown>> = []
    stream.addEventListener('message', (evt) => {
      decoder.push(evt.data)
      for (let f = decoder.next(); f != null; f = decoder.next()) answers.push(f)
    })
    const body = new Uint8Array(MAX_FRAME_BYTES - 8).fill(0x5b)
    if (!stream.send(varint(body.length))) await stream.onDrain()
    if (!stream.send(body)) await stream.onDrain()
    const deadline = Date.now() + 20_000
    while (answers.length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    expect(answers[0]).toMatchObject({ t: 'error', rid: 0, code: 'E_PARSE', reason: 'malformed' })
    expect(String(answers[0].message)).toMatch(TOO_DEEP)
    stream.abort(new Error('done'))
    // the relay still answers a well-formed request on a new stream
    const again: Stream = await connection.newStream(MAILBOX_PROTOCOL)
    const replies: Array<Record<string, unknown>> = []
    const d2 = new FrameDecoder(MAX_FRAME_BYTES)
    again.addEventListener('message', (evt) => { d2.push(evt.data); for (let f = d2.next(); f != null; f = d2.next()) replies.push(f) })
    const fetch = enc.encode(JSON.stringify({ t: 'fetch', rid: 1 }))
    again.send(new Uint8Array([...varint(fetch.length), ...fetch]))
    while (replies.length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
    expect(replies[0]).toMatchObject({ t: 'items', rid: 1 })
    again.abort(new Error('done'))
  })

  it('the message inside a sealed box is parsed with the same limit (parseMessage, and validateMessage on values)', () => {
    const message = createMessage({ op: 'query', from: { agent: 'a', org: 'b' }, to: { agent: 'c', org: 'd' }, p: { domain: 'x' } }) as any
    const text = JSON.stringify({ ...message, ext: { ns: { deep: 0 } } }).replace('"deep":0', `"deep":${deepJsonText(DEEP)}`)
    expect(() => parseMessage(text)).toThrow(expect.objectContaining({ code: 'E_INVALID_PARAM', message: expect.stringMatching(TOO_DEEP) }))
    // a value built in process: the whole message is walked to the limit, not only p
    let deep: unknown = 1
    for (let i = 0; i < 70; i++) deep = [deep]
    expect(() => validateMessage({ ...message, from: { ...message.from, x: deep } })).toThrow(expect.objectContaining({ code: 'E_INVALID_PARAM' }))
  })
})

describe('cards', () => {
  it('a card nested deep is refused by InvalidCardError naming the depth', async () => {
    const fetcher = await net.node({ agent: { name: 'fetcher', org: 'acme' }, libp2p: { connectionGater: loopbackOnly } })
    const mallory = await net.node({ agent: { name: 'mallory', org: 'evil' }, libp2p: { connectionGater: loopbackOnly } })
    await fetcher.libp2p.peerStore.merge(mallory.peerId, { multiaddrs: mallory.getMultiaddrs() })
    const card = (mallory as any).ownCard() as Record<string, unknown>
    const text = JSON.stringify({ ...card, deep: 0 }).replace('"deep":0', `"deep":${'['.repeat(DEEP)}${']'.repeat(DEEP)}`)
    await mallory.libp2p.unhandle(CARD_PROTOCOL)
    await mallory.libp2p.handle(CARD_PROTOCOL, async (stream: Stream) => {
      if (!stream.send(encodeCardFrame(text))) await stream.onDrain().catch(() => {})
      await stream.close().catch(() => {})
    }, { runOnLimitedConnection: true })
    await expect(fetcher.card(mallory.peerId, { force: true })).rejects.toMatchObject({ name: 'InvalidCardError', message: expect.stringMatching(TOO_DEEP) })
  })
})

describe('trust', () => {
  it('a gossiped record nested deep is refused by InvalidAttestationError naming the depth', () => {
    const bytes = enc.encode(`{"type":"endorsement","claims":{"x":${'['.repeat(1500)}${']'.repeat(1500)}}}`)
    expect(() => decodeAttestation(bytes)).toThrow(expect.objectContaining({ name: 'InvalidAttestationError', message: expect.stringMatching(TOO_DEEP) }))
  })

  it('a sync frame nested deep is refused by TrustSyncError naming the depth', async () => {
    const [outbound, inbound] = await streamPair()
    const body = enc.encode(`{"t":"want","ids":${'['.repeat(DEEP)}${']'.repeat(DEEP)}}`)
    outbound.send(new Uint8Array([...varint(body.length), ...body]))
    await expect(readSyncFrame(lpStream(inbound), 'want', AbortSignal.timeout(5000))).rejects.toMatchObject({ name: 'TrustSyncError', message: expect.stringMatching(TOO_DEEP) })
    outbound.abort(new Error('done'))
    inbound.abort(new Error('done'))
  })
})

describe('local API and config.json', () => {
  let scene: ApiScene
  beforeAll(async () => { scene = await apiScene({ introduce: true }) })
  afterAll(async () => { await scene?.cleanup() })

  it('a body nested deep (in message.ext, beside a valid message) is 400 E_INVALID_PARAM, nothing sent', async () => {
    const text = JSON.stringify({ to: scene.bob.peerId.toString(), message: { op: 'query', p: { domain: 'x' }, ext: { ns: { deep: 0 } } } })
      .replace('"deep":0', `"deep":${deepJsonText(DEEP)}`)
    const res = await fetch(`${scene.server.url}/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${scene.token}`, 'content-type': 'application/json' }, body: text })
    expect(res.status).toBe(400)
    const body = await res.json() as any
    expect(body.error.code).toBe('E_INVALID_PARAM')
    expect(body.error.message).toMatch(TOO_DEEP)
    expect(scene.alice.outbox()).toEqual([])
  })

  it('a config.json nested deep is a ConfigError naming the depth', async () => {
    const dir = await net.dir()
    await writeFile(join(dir, 'config.json'), `{"agent":{"name":"a"},"x":${deepJsonText(DEEP)}}`)
    await expect(loadConfig(dir)).rejects.toMatchObject({ name: 'ConfigError', message: expect.stringMatching(TOO_DEEP) })
  })
})
