/**
 * Fuzzing /molt/speak/1.0.0 (issue #9): the FrameDecoder on its own, then the
 * inbound stream handler of a real node over real TCP streams, with generated
 * and mutated inputs. Properties: no crash or unhandled rejection; every
 * message is answered (ACK or a REJECT carrying a MoltSpeak error whose code
 * is the one validation gives) or the stream is refused as a whole
 * (REJECT(0) E_PARSE/E_INVALID_PARAM, protocols/speak.md "Stream-level
 * refusals"); the stream always ends; an honest peer keeps being answered.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fc from 'fast-check'
import { TestNetwork } from '../support/nodes.js'
import { RawSpeakStream } from '../support/raw-speak.js'
import { FrameDecoder, FrameError, encodeFrame, FRAME_ACK, FRAME_MESSAGE, FRAME_REJECT, type Frame } from '../../src/services/speak/frames.js'
import { MAX_FRAME_BYTES, MAX_SKIPPABLE_FRAME_BYTES } from '../../src/services/speak/constants.js'
import { SPEAK_PROTOCOL, createMessage, signMessage, validateMessage, MoltSpeakError, type MoltNode } from '../../src/index.js'
import { MAX_MESSAGE_BYTES } from '../../src/moltspeak/constants.js'
import { assertJsonDepth } from '../../src/json/index.js'
import { attackScene } from '../support/attack.js'
import {
  CrashDetector, queryProbe, heapMiB, report, fuzzRuns, FUZZ_SEED, ERROR_CODES,
  byteMutation, mutateBytes, jsonMutation, mutateJson, lyingLength, varint, concat, anyJson, deepJsonText, nestingVariants
} from './support.js'

const net = new TestNetwork()
const crashes = new CrashDetector()
let target: MoltNode
let attacker: MoltNode
let honest: MoltNode

beforeAll(async () => {
  crashes.install()
  ;({ target, attacker, honest } = await attackScene(net))
})

afterAll(async () => {
  await net.cleanup()
  crashes.uninstall()
  expect(crashes.describe()).toBe('')
})

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Valid messages of every flavour to mutate: plain, signed with the attacker's key, with ext and exp */
function baseMessage (kind: number): Record<string, unknown> {
  const from = { agent: 'mallory', org: 'evil', key: attacker.moltKey }
  const to = { agent: 'target', org: 'acme' }
  switch (kind % 4) {
    case 0: return createMessage({ op: 'query', from, to, p: { domain: 'x', intent: 'y', params: { a: [1, 2, { b: 'c' }] } } }) as any
    case 1: return signMessage(createMessage({ op: 'task', from, to, cls: 'int', p: { description: 'do it', task_id: 't1' } }), (attacker as any).identity.signingKey) as any
    case 2: return createMessage({ op: 'respond', from, to, re: crypto.randomUUID(), exp: Date.now() + 60_000, p: { status: 'success', data: { ok: true } }, ext: { 'x.y': { z: 1 } } }) as any
    default: return createMessage({ op: 'ping', from, to, cls: 'pub', p: { nonce: 'n' } }) as any
  }
}

/** A body the attacker frames correctly: valid, JSON-mutated, byte-mutated, any JSON, deep or huge */
type BodyInput = { kind: 'body', bytes: Uint8Array }
/** Bytes that break the framing (or may): appended after the bodies, then the stream is closed */
type RawInput = { kind: 'raw', bytes: Uint8Array }

const bodyInput: fc.Arbitrary<BodyInput> = fc.oneof(
  { weight: 2, arbitrary: fc.tuple(fc.nat(3), fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([k, ms]) => JSON.stringify(mutateJson(baseMessage(k), ms)) ?? 'null') },
  { weight: 2, arbitrary: fc.tuple(fc.nat(3), fc.array(byteMutation, { minLength: 1, maxLength: 3 })).map(([k, ms]) => mutateBytes(enc.encode(JSON.stringify(baseMessage(k))), ms)) },
  { weight: 1, arbitrary: fc.nat(3).map(k => JSON.stringify(baseMessage(k))) },
  { weight: 1, arbitrary: anyJson.map(v => JSON.stringify(v) ?? '') },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.constantFrom(3, 24, 25, 26, 100, 50_000).map(depth => JSON.stringify({ ...baseMessage(0), p: { domain: 'x', deep: 0 } }).replace('"deep":0', `"deep":${deepJsonText(depth)}`)) },
  // issue #15: deep (to 100,000) anywhere in the message (extra field, ext, from, p), wide, or brackets inside strings
  { weight: 2, arbitrary: fc.nat(3).chain(k => nestingVariants(baseMessage(k), ['ext', 'from', 'p'], MAX_MESSAGE_BYTES)).map(v => v.text) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_MESSAGE_BYTES - 200, MAX_MESSAGE_BYTES + 1, MAX_MESSAGE_BYTES + 5000).map(size => { const m = baseMessage(0); const pad = size - JSON.stringify(m).length - 20; return JSON.stringify({ ...m, p: { domain: 'x', pad: 'a'.repeat(Math.max(0, pad)) } }) }) }
).map(b => ({ kind: 'body' as const, bytes: typeof b === 'string' ? enc.encode(b) : b }))

const rawInput: fc.Arbitrary<RawInput> = fc.oneof(
  // a valid frame, then bit flips, truncation, insertions… anywhere in it (prefix, type, seq, body)
  fc.tuple(fc.nat(3), fc.array(byteMutation, { minLength: 1, maxLength: 4 })).map(([k, ms]) => mutateBytes(encodeFrame(FRAME_MESSAGE, 1_000_000, enc.encode(JSON.stringify(baseMessage(k)))), ms)),
  // a length prefix that lies about the body after it
  fc.tuple(lyingLength, fc.uint8Array({ maxLength: 40 })).map(([lie, body]) => concat(lie(body.length + 4), Uint8Array.of(FRAME_MESSAGE), varint(1_000_000), body)),
  // huge or overlong varints as the seq
  fc.bigInt({ min: 0n, max: 1n << 60n }).map(seq => { const s = varint(seq); return concat(varint(1 + s.length + 2), Uint8Array.of(FRAME_MESSAGE), s, enc.encode('{}')) }),
  // unknown or reply-only frame types, non-increasing seqs
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.nat(2_000_000)).map(([type, seq]) => encodeFrame(type, seq, enc.encode('{}'))),
  // frames declared just over the message limit or the skip limit: read past or fatal
  fc.constantFrom(MAX_FRAME_BYTES + 1, MAX_SKIPPABLE_FRAME_BYTES, MAX_SKIPPABLE_FRAME_BYTES + 1).map(n => concat(varint(n), Uint8Array.of(FRAME_MESSAGE), varint(1_000_000), new Uint8Array(64))),
  // plain noise
  fc.uint8Array({ minLength: 1, maxLength: 128 })
).map(bytes => ({ kind: 'raw' as const, bytes }))

const session = fc.record({
  bodies: fc.array(bodyInput, { minLength: 0, maxLength: 6 }),
  raw: fc.option(rawInput, { nil: undefined, freq: 3 })
})

/** What the receiver must answer for a correctly framed body, from the validator itself */
function expectedCode (bytes: Uint8Array): string | undefined {
  if (bytes.byteLength > MAX_MESSAGE_BYTES) return 'E_INVALID_PARAM'
  // nested past MAX_JSON_DEPTH: refused on the raw bytes, before any other check (issue #15)
  try {
    assertJsonDepth(bytes)
  } catch {
    return 'E_INVALID_PARAM'
  }
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return 'E_PARSE'
  }
  try {
    validateMessage(value)
    return undefined
  } catch (err) {
    return err instanceof MoltSpeakError ? err.code : 'E_SCHEMA'
  }
}

describe('FrameDecoder on its own', () => {
  it('returns whole frames, waits, or throws FrameError, for any bytes split anywhere; never buffers past one frame', () => {
    const runs = fuzzRuns(500)
    let inputs = 0
    fc.assert(fc.property(
      fc.array(fc.oneof(rawInput.map(r => r.bytes), bodyInput.map(b => encodeFrame(FRAME_MESSAGE, 7, b.bytes))), { minLength: 1, maxLength: 4 }),
      fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 8 }),
      (parts, cuts) => {
        inputs++
        const bytes = concat(...parts)
        const decoder = new FrameDecoder(MAX_FRAME_BYTES, MAX_SKIPPABLE_FRAME_BYTES)
        // plain checks in the hot loop (expect() per chunk would dominate the run time)
        const check = (ok: boolean, what: string): void => { if (!ok) throw new Error(what) }
        const scale = Math.max(1, Math.floor(bytes.length / 256))
        let offset = 0
        let i = 0
        try {
          while (offset < bytes.length) {
            const next = Math.min(bytes.length, offset + cuts[i++ % cuts.length] * scale)
            decoder.push(bytes.subarray(offset, next))
            offset = next
            for (let f = decoder.next(); f != null; f = decoder.next()) {
              check(Number.isSafeInteger(f.seq) && f.seq >= 0, `bad seq ${f.seq}`)
              check(f.type >= 0 && f.type <= 255, `bad type ${f.type}`)
              check(f.oversizedBytes != null ? f.body.byteLength === 0 : f.body.byteLength <= MAX_FRAME_BYTES, 'frame body over the limit')
            }
            // at most one frame (and its prefix) plus the last chunk is ever held
            check(decoder.bufferedBytes <= MAX_FRAME_BYTES + 5 + 4096 * scale, `buffered ${decoder.bufferedBytes}`)
          }
          decoder.end()
        } catch (err) {
          if (!(err instanceof FrameError)) throw err
          expect(['oversized', 'malformed', 'truncated']).toContain(err.reason)
        }
      }
    ), { seed: FUZZ_SEED, numRuns: runs })
    expect(inputs).toBe(runs)
  })

  it('decodes valid frames identically however the stream is split', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.nat(2 ** 35 - 1), fc.uint8Array({ maxLength: 300 })), { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 1, max: 64 }),
      (frames, cut) => {
        const bytes = concat(...frames.map(([t, s, b]) => encodeFrame(t, s, b)))
        const decoder = new FrameDecoder(MAX_FRAME_BYTES)
        const out: Frame[] = []
        for (let o = 0; o < bytes.length; o += cut) {
          decoder.push(bytes.subarray(o, o + cut))
          for (let f = decoder.next(); f != null; f = decoder.next()) out.push(f)
        }
        decoder.end()
        expect(out.map(f => [f.type, f.seq, Buffer.from(f.body).toString('hex')])).toEqual(frames.map(([t, s, b]) => [t, s, Buffer.from(b).toString('hex')]))
      }
    ), { seed: FUZZ_SEED, numRuns: fuzzRuns(300) })
  })
})

describe('the inbound speak handler of a real node, over TCP', () => {
  it('answers every input with an ACK, a defined REJECT or a stream-level refusal; stays responsive', async () => {
    const target_inputs = fuzzRuns(600)
    let inputs = 0
    let sessions = 0
    const outcomes: Record<string, number> = {}
    const count = (what: string): void => { outcomes[what] = (outcomes[what] ?? 0) + 1 }
    const heapBefore = heapMiB()
    const probe = queryProbe(honest, target.peerId, true)
    const started = performance.now()

    await fc.assert(fc.asyncProperty(session, async ({ bodies, raw }) => {
      sessions++
      inputs += bodies.length + (raw != null ? 1 : 0)
      const stream = await attacker.libp2p.dialProtocol(target.peerId, SPEAK_PROTOCOL)
      const speak = new RawSpeakStream(stream)
      const sent = bodies.map((b, i) => ({ seq: i + 1, bytes: b.bytes, code: expectedCode(b.bytes) }))
      const chunks = sent.map(s => encodeFrame(FRAME_MESSAGE, s.seq, s.bytes))
      if (raw != null) chunks.push(raw.bytes)
      for (const chunk of chunks) {
        if (!stream.send(chunk)) await stream.onDrain()
      }
      await stream.close().catch(() => {})
      const frames = await speak.until((_, closed) => closed)

      const refusal = frames.find(f => f.type === FRAME_REJECT && f.seq === 0)
      for (const f of frames) {
        expect([FRAME_ACK, FRAME_REJECT]).toContain(f.type)
        if (f.type !== FRAME_REJECT) continue
        const reply = JSON.parse(dec.decode(f.body))
        expect(reply.op).toBe('error')
        expect(ERROR_CODES.has(reply.p.code)).toBe(true)
      }
      if (refusal != null) {
        // only broken framing refuses a whole stream
        expect(raw).toBeDefined()
        expect(['E_PARSE', 'E_INVALID_PARAM']).toContain(JSON.parse(dec.decode(refusal.body)).p.code)
        count('stream-refused')
      }
      const acked = Math.max(0, ...frames.filter(f => f.type === FRAME_ACK).map(f => f.seq))
      for (const s of sent) {
        const reject = frames.find(f => f.type === FRAME_REJECT && f.seq === s.seq)
        if (reject != null) {
          const code = JSON.parse(dec.decode(reject.body)).p.code
          // the validator's own verdict, or (for a message it accepts) a node-level check
          if (s.code !== undefined) expect(code).toBe(s.code)
          else expect(['E_AUTH_FAILED', 'E_SIGNATURE', 'E_TIMEOUT', 'E_INVALID_PARAM']).toContain(code)
          count(`reject:${String(code)}`)
        } else if (acked >= s.seq) {
          expect(s.code).toBeUndefined()
          count('accepted')
        } else {
          // unanswered only when the whole stream was refused
          if (refusal == null) {
            const lingering = target.libp2p.getConnections(attacker.peerId).flatMap(c => c.streams).filter(x => x.protocol === SPEAK_PROTOCOL).map(x => `${x.direction}:${x.status}`)
            throw new Error(`seq ${s.seq} unanswered; frames ${JSON.stringify(frames.map(f => [f.type, f.seq]))}; our stream ${stream.status}; target streams ${lingering.join(',')}`)
          }
        }
      }
    }), { seed: FUZZ_SEED, numRuns: Math.ceil(target_inputs / 3.5) })

    const seconds = (performance.now() - started) / 1000
    const latency = await probe.stop()
    const heapAfter = heapMiB()
    await report('speak', { inputs, sessions, seconds: Math.round(seconds * 10) / 10, outcomes, honestLatencyMs: latency, heapBeforeMiB: heapBefore, heapAfterMiB: heapAfter })
    // every honest request was served (the failures named); its latency is a figure for npm run bench, not a test
    expect(probe.failures.map(err => `${(err as Error).name}: ${(err as Error).message}`)).toEqual([])
    expect(latency.requests).toBeGreaterThan(10)
    expect(crashes.describe()).toBe('')
    // the node still serves the attacker too once it behaves
    const reply = await attacker.request(target.peerId, { op: 'query', p: { domain: 'after' } })
    expect(reply.p.status).toBe('success')
  }, 600_000)
})
