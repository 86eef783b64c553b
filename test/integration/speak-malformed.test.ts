import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { TestNetwork } from '../support/nodes.js'
import { rawSpeak, closeRawStreams, RawSpeakStream, encodeFrame, FRAME_REJECT } from '../support/raw-speak.js'
import { createMessage, type MoltNode } from '../../src/index.js'
import { FRAME_ACK } from '../../src/services/speak/frames.js'

const net = new TestNetwork()
let attacker: MoltNode
let target: MoltNode
let honest: MoltNode
let honestLoop: Promise<number>
let stopHonest = false

beforeAll(async () => {
  attacker = await net.node({ agent: { name: 'mallory', org: 'evil' } })
  target = await net.node({ agent: { name: 'target', org: 'acme' } })
  honest = await net.node({ agent: { name: 'honest', org: 'acme' } })
  await net.introduce()
  target.handle('query', (m) => ({ status: 'success', data: m.p }))
  // a good exchange keeps running on the same node for the whole file
  honestLoop = (async () => {
    let done = 0
    while (!stopHonest) {
      const reply = await honest.request(target.peerId, { op: 'query', p: { domain: 'steady', n: done } }, { timeout: 5000 })
      expect(reply.p.data).toEqual({ domain: 'steady', n: done })
      done++
    }
    return done
  })()
})

afterEach(async () => { await closeRawStreams() })

afterAll(async () => {
  stopHonest = true
  await net.cleanup()
})

const good = (): Record<string, unknown> => createMessage({ op: 'query', from: { agent: 'mallory', org: 'evil' }, to: { agent: 'target', org: 'acme' }, p: { domain: 'x' } }) as any
const deep = (n: number): unknown => n === 0 ? {} : { d: deep(n - 1) }

/** Messages that are framed correctly but must be refused, each with its MoltSpeak error code */
const fixtures: Array<[string, string | Record<string, unknown> | Uint8Array, string]> = [
  ['not JSON', 'this is not json', 'E_PARSE'],
  ['truncated JSON', '{"v":"0.1","id":', 'E_PARSE'],
  ['invalid UTF-8', Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]), 'E_PARSE'],
  ['a JSON array', '[]', 'E_SCHEMA'],
  ['an empty object', '{}', 'E_MISSING_FIELD'],
  ['wrong version', { ...good(), v: '0.2' }, 'E_VERSION'],
  ['missing from', (() => { const m = good(); delete m.from; return m })(), 'E_MISSING_FIELD'],
  ['missing p', (() => { const m = good(); delete m.p; return m })(), 'E_MISSING_FIELD'],
  ['unknown op', { ...good(), op: 'launch_missiles' }, 'E_SCHEMA'],
  ['upper-case id', { ...good(), id: '550E8400-E29B-41D4-A716-446655440000' }, 'E_SCHEMA'],
  ['long-word cls', { ...good(), cls: 'internal' }, 'E_SCHEMA'],
  ['string ts', { ...good(), ts: '1703280000000' }, 'E_SCHEMA'],
  ['payload nested 51 deep', { ...good(), p: deep(51) }, 'E_INVALID_PARAM'],
  ['pii without consent metadata', { ...good(), cls: 'pii' }, 'E_CONSENT'],
  ['sec across orgs', { ...good(), cls: 'sec' }, 'E_CLASSIFICATION'],
  ['malformed sig', { ...good(), sig: 'rsa:abc' }, 'E_SCHEMA'],
  ['over 1 MiB', { ...good(), p: { domain: 'x', blob: 'a'.repeat(1_048_576) } }, 'E_INVALID_PARAM']
]

describe('malformed messages get an error reply and the stream stays usable', () => {
  for (const [name, body, code] of fixtures) {
    it(`${name} → ${code}`, async () => {
      const raw = await rawSpeak(attacker, target)
      const bytes = body instanceof Uint8Array ? body : new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body))
      raw.send(encodeFrame(1, 1, bytes))
      // the same stream still carries a good message afterwards
      raw.message(2, good())
      const frames = await raw.until(f => f.some(x => x.type === FRAME_ACK && x.seq >= 2))
      const reject = frames.find(f => f.type === FRAME_REJECT)
      expect(reject?.seq).toBe(1)
      const reply = RawSpeakStream.rejection(reject!)
      expect(reply.op).toBe('error')
      expect(reply.p.code).toBe(code)
      expect(reply.p.category).toBeTypeOf('string')
      expect(reply.from.agent).toBe('target')
      expect(raw.closed).toBe(false)
    })
  }

  it('unknown fields and unknown ext namespaces are ignored, not refused', async () => {
    const raw = await rawSpeak(attacker, target)
    const message = { ...good(), x_future: 1, ext: { 'someorg.thing': { a: 1 } } }
    raw.message(1, message)
    const frames = await raw.until(f => f.length > 0)
    expect(frames[0]).toMatchObject({ type: FRAME_ACK, seq: 1 })
    const stored = (await target.inbox({ limit: 100_000 })).find(e => e.message.id === message.id)
    expect(stored?.message.ext).toEqual({ 'someorg.thing': { a: 1 } })
  })
})

describe('broken framing closes only that stream', () => {
  const fatal: Array<[string, Uint8Array]> = [
    ['a length prefix beyond the 16 MiB skip limit', Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x01, 0x01])], // 256 MiB
    ['an unknown frame type', encodeFrame(0x7f, 1, new Uint8Array(4))],
    ['a frame too short to hold a type and seq', Uint8Array.from([0x01, 0x01])],
    ['a 6-byte varint', Uint8Array.from([0x05, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['a sequence number that does not increase', new Uint8Array([...encodeFrame(1, 5, new TextEncoder().encode('{}')), ...encodeFrame(1, 5, new TextEncoder().encode('{}'))])]
  ]
  for (const [name, bytes] of fatal) {
    it(`${name} → final REJECT(seq 0) and the stream closes`, async () => {
      const raw = await rawSpeak(attacker, target)
      raw.send(bytes)
      const frames = await raw.until((f, closed) => closed && f.some(x => x.type === FRAME_REJECT && x.seq === 0))
      const reply = RawSpeakStream.rejection(frames.find(x => x.seq === 0)!)
      expect(['E_PARSE', 'E_INVALID_PARAM']).toContain(reply.p.code)
    })
  }

  it('a frame cut off by the end of the stream closes the stream without a crash', async () => {
    const raw = await rawSpeak(attacker, target)
    const frame = encodeFrame(1, 1, new TextEncoder().encode(JSON.stringify(good())))
    raw.send(frame.subarray(0, frame.length - 10))
    await raw.stream.close()
    await raw.until((_, closed) => closed)
  })

  it('the attacked node still serves everyone, and the honest exchange never failed', async () => {
    const reply = await attacker.request(target.peerId, { op: 'query', p: { domain: 'after' } })
    expect(reply.p.status).toBe('success')
    stopHonest = true
    const completed = await honestLoop
    expect(completed).toBeGreaterThan(5)
  })
})
