/**
 * Fuzzing /molt/mailbox/1.0.0 (issue #9): the frame decoder on its own, then a
 * real relay's mailbox handler (LevelDB store) over real TCP connections, with
 * generated and mutated requests. Properties: no crash or unhandled
 * rejection; every request frame with a positive integer `rid` gets exactly
 * one answer with that rid (a result or an `error` with a documented reason);
 * a frame that is not a JSON object or has no valid rid ends the stream with
 * `error` rid 0 (E_PARSE, reason malformed); an honest agent's deposits and
 * fetches keep being answered throughout.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TestNetwork } from '../support/nodes.js'
import { createRelayNode, type RelayNode } from '../../src/relay/index.js'
import { MailboxChannel } from '../../src/services/mailbox/channel.js'
import { FrameDecoder, encodeFrame } from '../../src/services/mailbox/frames.js'
import { MailboxProtocolError } from '../../src/services/mailbox/errors.js'
import { signDeposit } from '../../src/services/mailbox/deposit-signature.js'
import { PROTOCOL as MAILBOX_PROTOCOL, MAX_FRAME_BYTES } from '../../src/services/mailbox/constants.js'
import type { MoltNode } from '../../src/index.js'
import { assertJsonDepth } from '../../src/json/index.js'
import {
  Changes, CrashDetector, LatencyProbe, heapMiB, report, fuzzRuns, FUZZ_SEED, ERROR_CODES,
  byteMutation, mutateBytes, jsonMutation, mutateJson, lyingLength, concat, anyJson, deepJsonText, nestingVariants
} from './support.js'

const net = new TestNetwork()
const crashes = new CrashDetector()
let relay: RelayNode
let attacker: MoltNode
let honest: MoltNode
let other: string
const loopbackOnly = { denyDialMultiaddr: (ma: any) => !ma.toString().startsWith('/ip4/127.') }
const REASONS = new Set(['mailbox-full', 'sender-quota', 'store-full', 'rate-limited', 'too-large', 'bad-signature', 'not-sender', 'malformed', 'expired', 'shutting-down', 'storage-error', 'unknown-recipient', 'source-quota', 'first-contact-quota'])

beforeAll(async () => {
  crashes.install()
  relay = await createRelayNode({
    dataDir: await net.dir(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    libp2p: { connectionManager: { inboundConnectionThreshold: 1000 }, connectionGater: loopbackOnly }
  })
  attacker = await net.node({ agent: { name: 'mallory', org: 'evil' }, libp2p: { connectionGater: loopbackOnly } })
  honest = await net.node({ agent: { name: 'honest', org: 'acme' }, libp2p: { connectionGater: loopbackOnly } })
  other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
})

afterAll(async () => {
  await net.cleanup()
  await relay?.stop({ drainMs: 0 })
  crashes.uninstall()
  expect(crashes.describe()).toBe('')
})

const enc = new TextEncoder()

function validRequest (kind: number, who: string): Record<string, unknown> {
  const from = attacker.peerId.toString()
  // generated while the suite runs, so the PeerIds exist and the signature covers the real recipient
  const to = resolveTo(who) as string
  switch (kind % 5) {
    case 0: case 1: {
      const items = Array.from({ length: 1 + (kind % 3) }, (_, i) => ({ id: `m-${i}-${Math.floor(Math.random() * 1e9)}`, exp: Date.now() + 600_000, box: Buffer.from(`sealed box ${i}`).toString('base64') }))
      return { t: 'deposit', from, to, items, sig: signDeposit((attacker as any).identity.signingKey, from, to, items) }
    }
    case 2: return { t: 'fetch', limit: 5 }
    case 3: return { t: 'ack', keys: ['0000000000000001', 'nope'] }
    default: return { t: 'watch' }
  }
}

type Input = { kind: 'frame', value: unknown } | { kind: 'raw', bytes: Uint8Array }

const recipient = fc.constantFrom('self', 'honest', 'other')
const frameInput: fc.Arbitrary<Input> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.nat(4), recipient, fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([k, r, ms]) => ({ kind: 'frame' as const, value: mutateJson(validRequest(k, r), ms) })) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(4), recipient).map(([k, r]) => ({ kind: 'frame' as const, value: validRequest(k, r) })) },
  { weight: 1, arbitrary: fc.record({ t: fc.oneof(fc.constantFrom('deposit', 'fetch', 'ack', 'watch', 'notify', 'stored', ''), fc.string()), rid: fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1.5, 2 ** 53, '1', null)), limit: anyJson, after: anyJson, keys: anyJson, items: anyJson, to: anyJson, from: anyJson, sig: anyJson }, { requiredKeys: ['t'] }).map(value => ({ kind: 'frame' as const, value })) },
  { weight: 1, arbitrary: anyJson.map(value => ({ kind: 'frame' as const, value })) }
)
const rawInput: fc.Arbitrary<Input> = fc.oneof(
  fc.tuple(fc.nat(4), recipient, fc.array(byteMutation, { minLength: 1, maxLength: 4 })).map(([k, r, ms]) => mutateBytes(encodeFrame({ ...validRequest(k, r), rid: 999_999 }), ms)),
  fc.tuple(lyingLength, fc.uint8Array({ maxLength: 40 })).map(([lie, body]) => concat(lie(body.length), body)),
  fc.constantFrom(100, 5_000).map(depth => { const body = enc.encode(`{"t":"fetch","rid":999999,"x":${deepJsonText(depth)}}`); return concat(encodeLength(body.length), body) }),
  fc.uint8Array({ minLength: 1, maxLength: 96 })
).map(bytes => ({ kind: 'raw' as const, bytes }))
/**
 * Issue #15: deep (to 100,000), wide or string-held brackets in any request, sent to the relay
 * (not split byte by byte: the decoder's splitting does not depend on content; the 8 MiB `[`
 * frame is in integration/security-depth.test.ts)
 */
const nestedInput: fc.Arbitrary<Input> = fc.tuple(fc.nat(4), recipient)
  .chain(([k, r]) => nestingVariants({ ...validRequest(k, r), rid: 999_999 }, ['items', 'keys'], 256 * 1024))
  .map(v => { const body = enc.encode(v.text); return { kind: 'raw' as const, bytes: concat(encodeLength(body.length), body) } })

/** Whether a frame's JSON nests past the limit (the relay refuses it before parsing) */
function tooDeep (json: string): boolean {
  try {
    assertJsonDepth(json)
    return false
  } catch {
    return true
  }
}

function encodeLength (n: number): Uint8Array {
  const out: number[] = []
  do { let b = n & 0x7f; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b) } while (n > 0)
  return Uint8Array.from(out)
}

const resolveTo = (value: unknown): unknown => {
  // recipients are named symbolically in the arbitraries: the PeerIds exist only at run time
  if (Array.isArray(value)) return value.map(resolveTo)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveTo(v)]))
  if (value === 'self') return attacker.peerId.toString()
  if (value === 'honest') return honest.peerId.toString()
  if (value === 'other') return other
  return value
}

describe('mailbox FrameDecoder on its own', () => {
  it('yields JSON objects or throws MailboxProtocolError for any bytes, split anywhere', () => {
    fc.assert(fc.property(fc.array(fc.oneof(frameInput.map(i => encodeFrame(i.kind === 'frame' ? i.value : null)), rawInput.map(i => (i as { bytes: Uint8Array }).bytes)), { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 512 }), (parts, cut) => {
      const bytes = concat(...parts)
      const decoder = new FrameDecoder(MAX_FRAME_BYTES)
      try {
        for (let o = 0; o < bytes.length; o += cut) {
          decoder.push(bytes.subarray(o, o + cut))
          for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
            if (typeof f !== 'object' || f === null || Array.isArray(f)) throw new Error('not an object')
          }
        }
      } catch (err) {
        if (!(err instanceof MailboxProtocolError)) throw err
      }
    }), { seed: FUZZ_SEED, numRuns: fuzzRuns(500) })
  })
})

describe('a real relay mailbox, over TCP', () => {
  it('answers every request once by rid, or ends the stream with error rid 0; stays responsive', async () => {
    const targetInputs = fuzzRuns(600)
    let inputs = 0
    let sessions = 0
    const outcomes: Record<string, number> = {}
    const count = (what: string): void => { outcomes[what] = (outcomes[what] ?? 0) + 1 }
    const connection = await attacker.libp2p.dial(relay.getMultiaddrs()[0])
    const honestChannel = await (async () => {
      const c = await honest.libp2p.dial(relay.getMultiaddrs()[0])
      return new MailboxChannel(await c.newStream(MAILBOX_PROTOCOL), honest.libp2p.logger.forComponent('test'))
    })()
    await honestChannel.request({ t: 'fetch' }) // a mailbox session registers honest: its own probes are accepted
    const heapBefore = heapMiB()
    const probe = new LatencyProbe()
    let n = 0
    probe.start(async () => {
      const from = honest.peerId.toString()
      const to = honest.peerId.toString()
      const items = [{ id: `probe-${n++}`, exp: Date.now() + 60_000, box: Buffer.from('probe').toString('base64') }]
      const stored = await honestChannel.request({ t: 'deposit', from, to, items, sig: signDeposit((honest as any).identity.signingKey, from, to, items) })
      expect(stored.stored).toBe(1)
      const fetched = await honestChannel.request({ t: 'fetch' })
      await honestChannel.request({ t: 'ack', keys: (fetched.items as Array<{ key: string }>).map(i => i.key) })
    })
    const started = performance.now()

    await fc.assert(fc.asyncProperty(fc.array(frameInput, { minLength: 1, maxLength: 6 }), fc.option(fc.oneof({ weight: 4, arbitrary: rawInput }, { weight: 1, arbitrary: nestedInput }), { nil: undefined, freq: 4 }), async (frames, raw) => {
      sessions++
      inputs += frames.length + (raw != null ? 1 : 0)
      if (process.env.FUZZ_TRACE !== undefined) (await import('node:fs')).appendFileSync(process.env.FUZZ_TRACE, `${sessions} ${JSON.stringify(frames).slice(0, 300)} raw=${raw != null}\n`)
      const stream = await connection.newStream(MAILBOX_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      const answers: Array<Record<string, unknown>> = []
      const decoder = new FrameDecoder(MAX_FRAME_BYTES)
      let closed = false
      /** wakes the wait below on every answer and at the stream's end */
      const changes = new Changes()
      stream.addEventListener('message', (evt) => {
        decoder.push(evt.data)
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) answers.push(f)
        changes.changed()
      })
      const onEnd = (): void => { closed = true; changes.changed() }
      stream.addEventListener('remoteCloseWrite', onEnd)
      stream.addEventListener('close', onEnd)

      // what the relay must answer: one answer per valid rid, until the first frame that breaks the stream
      const expected: number[] = []
      let breaks = false
      const chunks: Uint8Array[] = []
      frames.forEach((input, i) => {
        let value = resolveTo((input as { value: unknown }).value)
        // numbered by position unless the mutation set a rid of its own
        if (typeof value === 'object' && value !== null && !Array.isArray(value) && !('rid' in value)) value = { ...value, rid: i + 1 }
        const bytes = encodeFrame(value)
        chunks.push(bytes)
        if (breaks) return
        const isObject = typeof value === 'object' && value !== null && !Array.isArray(value)
        const rid = isObject ? (value as Record<string, unknown>).rid : undefined
        // a frame nested deeper than MAX_JSON_DEPTH is malformed (issue #15): it ends the stream like one that is no object
        if (bytes.length - 4 > MAX_FRAME_BYTES || !isObject || !Number.isSafeInteger(rid) || (rid as number) <= 0 || tooDeep(JSON.stringify(value))) breaks = true
        else expected.push(rid as number)
      })
      if (raw != null) chunks.push((raw as { bytes: Uint8Array }).bytes)
      for (const chunk of chunks) {
        if (stream.writeStatus !== 'writable') break
        if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
      }
      const fatal = (): Record<string, unknown> | undefined => answers.find(a => a.rid === 0)
      const answered = (rid: number): number => answers.filter(a => a.rid === rid).length
      const complete = (): boolean => (fatal() != null && closed) || (expected.every(rid => answered(rid) >= expected.filter(r => r === rid).length) && (!breaks || closed))
      await changes.until(complete, 10_000, () => new Error(`no complete answer: expected ${JSON.stringify(expected)} breaks=${String(breaks)} got ${JSON.stringify(answers.map(a => [a.t, a.rid, a.reason])).slice(0, 500)} closed=${String(closed)}`))
      for (const a of answers) {
        expect(['stored', 'items', 'acked', 'notify', 'error']).toContain(a.t)
        if (a.t === 'error') {
          expect(ERROR_CODES.has(a.code as string)).toBe(true)
          expect(REASONS.has(a.reason as string)).toBe(true)
          count(`error:${String(a.reason)}`)
        } else {
          count(String(a.t))
        }
      }
      const stop = fatal()
      if (stop != null) {
        expect(stop).toMatchObject({ t: 'error', code: 'E_PARSE', reason: 'malformed' })
        // only a frame that is no object, or has no valid rid, or broken bytes, ends the stream
        expect(breaks || raw != null).toBe(true)
      } else {
        expect(breaks).toBe(false)
      }
      stream.abort(new Error('session over'))
    }), { seed: FUZZ_SEED, numRuns: Math.ceil(targetInputs / 4) })

    const seconds = (performance.now() - started) / 1000
    const latency = await probe.stop()
    const heapAfter = heapMiB()
    await report('mailbox', { inputs, sessions, seconds: Math.round(seconds * 10) / 10, outcomes, honestLatencyMs: latency, heapBeforeMiB: heapBefore, heapAfterMiB: heapAfter, store: relay.mailbox?.stats() })
    // every honest request was served (the failures named); its latency is a figure for npm run bench, not a test
    expect(probe.failures.map(err => `${(err as Error).name}: ${(err as Error).message}`)).toEqual([])
    expect(latency.requests).toBeGreaterThan(10)
    honestChannel.close()
  }, 600_000)
})
