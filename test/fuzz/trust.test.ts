/**
 * Fuzzing trust (issue #9): generated and mutated attestation records through
 * the record decoder, the gossip topic validator and `trust.submit()` of a
 * real node, and hostile `/molt/trust-sync/1.0.0` sessions over real TCP
 * connections in both directions (a hostile client of the node's sync server,
 * and a hostile server the node pulls from). Properties: no crash or
 * unhandled rejection; every input refused with a named error (or a gossip
 * Reject/Ignore counted under a named error) or accepted only if valid — an
 * accepted record is one its issuer really signed; the node keeps answering an
 * honest peer's requests throughout (latency probe).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import fc from 'fast-check'
import { peerIdFromString } from '@libp2p/peer-id'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Stream } from '@libp2p/interface'
import { TestNetwork } from '../support/nodes.js'
import { newIdentity, record } from '../support/trust.js'
import type { Identity } from '../../src/identity/index.js'
import type { MoltNode } from '../../src/index.js'
import {
  decodeAttestation, encodeAttestation, verifyAttestation, signAttestation, peerIdOfKey,
  TOPIC, SYNC_PROTOCOL, MAX_ATTESTATION_BYTES, type Attestation, type UnsignedAttestation
} from '../../src/services/trust/index.js'
import * as errors from '../../src/services/trust/errors.js'
import { SYNC_BUCKETS, MAX_SYNC_FRAME_BYTES } from '../../src/services/trust/constants.js'
import {
  Changes, CrashDetector, queryProbe, heapMiB, report, fuzzRuns, FUZZ_SEED,
  byteMutation, mutateBytes, jsonMutation, mutateJson, lyingLength, concat, varint, anyJson, nestingVariants
} from './support.js'

const net = new TestNetwork()
const crashes = new CrashDetector()
const loopbackOnly = { denyDialMultiaddr: (ma: any) => !ma.toString().startsWith('/ip4/127.') }
const day = 86_400_000
/** The trust module's own errors: every refusal of a record or a sync frame is one of these */
const TRUST_ERRORS = new Set(Object.keys(errors))
const enc = new TextEncoder()
const dec = new TextDecoder()

let victim: MoltNode
let attacker: MoltNode
let honest: MoltNode
let issuers: Identity[]
/** Records that really were signed by their issuer: the only ones that may ever be accepted */
const signed = new Map<string, Attestation>()
let pool: Attestation[] = []

function sign (fields: UnsignedAttestation, issuer: Identity): Attestation {
  const rec = signAttestation(fields, issuer.signingKey)
  signed.set(rec.id, rec)
  return rec
}

beforeAll(async () => {
  crashes.install()
  const trustOpts = { syncInterval: 0, initialSyncPeers: 0, syncTimeout: 5_000 }
  victim = await net.node({ agent: { name: 'victim', org: 'acme' }, trust: trustOpts, libp2p: { connectionGater: loopbackOnly } })
  attacker = await net.node({ agent: { name: 'mallory', org: 'evil' }, trust: trustOpts, libp2p: { connectionGater: loopbackOnly } })
  honest = await net.node({ agent: { name: 'honest', org: 'acme' }, trust: trustOpts, libp2p: { connectionGater: loopbackOnly } })
  victim.handle('query', () => ({ status: 'success' }))
  await attacker.libp2p.dial(victim.getMultiaddrs()[0])
  await honest.libp2p.dial(victim.getMultiaddrs()[0])
  issuers = await Promise.all(Array.from({ length: 4 }, async () => newIdentity()))
  const subjects = [victim.peerId.toString(), honest.peerId.toString(), ...issuers.map(i => i.moltKey)]
  const now = Date.now()
  // valid records of every type, plus an expired one and one from the future (both refused on arrival)
  for (const [i, issuer] of issuers.entries()) {
    const subject = subjects[(i + 1) % subjects.length]
    const subjectKey = subject.startsWith('ed25519:') ? subject : keyOf(subject)
    const base = { version: '1.0' as const, issued: now, expires: now + 365 * day, issuer: { type: 'agent' as const, key: issuer.moltKey }, subject: { key: subjectKey } }
    const e = sign({ ...base, type: 'endorsement', claims: { strength: 'strong', domain: 'translate.text', skills: ['a', 'b'], context: 'good work' }, evidence: { message_ids: ['m1'] } }, issuer)
    sign({ ...base, type: 'task_completion', claims: { task_id: `t${i}`, outcome: 'completed', quality_rating: 5 } }, issuer)
    sign({ ...base, type: 'warning', claims: { severity: 'high' } }, issuer)
    sign({ ...base, type: 'incident_report', claims: { severity: 'critical', evidence_hash: 'sha256:00' } }, issuer)
    sign({ ...base, type: 'revocation', claims: { credential_id: e.id, reason: 'changed my mind' } }, issuer)
    sign({ ...base, issued: now - 3 * day, expires: now - day, type: 'endorsement', claims: { strength: 'weak' } }, issuer)
    sign({ ...base, issued: now + 3_600_000, expires: now + 2 * day, type: 'endorsement', claims: { strength: 'weak' } }, issuer)
  }
  pool = [...signed.values()]
  // a record made with the test helper, about the victim
  const helper = record(issuers[0], keyOf(victim.peerId.toString()))
  signed.set(helper.id, helper)
  pool.push(helper)
})

afterAll(async () => {
  await net.cleanup()
  crashes.uninstall()
  expect(crashes.describe()).toBe('')
})

function keyOf (peer: string): string {
  const pub = peerIdFromString(peer).publicKey
  return 'ed25519:' + Buffer.from(pub?.raw as Uint8Array).toString('base64')
}

/** A refusal must be one of the trust errors (never a TypeError or RangeError from unchecked input) */
function expectNamed (err: any, where: string): string {
  if (!TRUST_ERRORS.has(err?.name)) throw new Error(`${where}: refused with an unnamed error ${err?.name}: ${err?.message}\n${err?.stack}`)
  return err.name
}

/** A record accepted anywhere must be one its issuer signed, unchanged */
function expectSigned (rec: Attestation, where: string): void {
  const original = signed.get(rec.id)
  if (original === undefined) throw new Error(`${where}: accepted a record nobody signed: ${JSON.stringify(rec).slice(0, 400)}`)
  expect(Buffer.from(encodeAttestation(rec)).equals(Buffer.from(encodeAttestation(original)))).toBe(true)
}

// ------------------------------------------------------------------ inputs

const hex = (length: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length })

const pick = fc.nat()
/** Fields of a fresh record, some valid, many not: signing either refuses them by name or yields a record that verifies */
const freshFields: fc.Arbitrary<{ issuer: number, fields: Record<string, unknown> }> = fc.record({
  issuer: fc.nat(),
  type: fc.oneof(fc.constantFrom('endorsement', 'task_completion', 'warning', 'incident_report', 'revocation'), fc.string({ maxLength: 10 })),
  issuedOffset: fc.oneof(fc.integer({ min: -2 * day, max: 2 * day }), fc.constantFrom(0, -800 * day, 10 * 60_000)),
  validity: fc.oneof(fc.integer({ min: -day, max: 800 * day }), fc.constant(365 * day)),
  subject: fc.nat(),
  claims: fc.oneof(
    fc.record({ strength: fc.constantFrom('weak', 'strong', 'huge'), domain: fc.string({ maxLength: 140 }), skills: fc.array(fc.string({ maxLength: 8 }), { maxLength: 20 }) }, { requiredKeys: [] }),
    fc.record({ task_id: fc.string({ maxLength: 8 }), outcome: fc.constantFrom('completed', 'failed', 'nope'), quality_rating: fc.oneof(fc.integer({ min: -1, max: 7 }), fc.double()) }, { requiredKeys: [] }),
    fc.record({ severity: fc.constantFrom('low', 'critical', 'x'), context: fc.string({ maxLength: 600 }) }, { requiredKeys: [] }),
    fc.record({ credential_id: fc.oneof(hex(64), fc.string()), reason: fc.string({ maxLength: 20 }) }, { requiredKeys: [] }),
    fc.dictionary(fc.string({ maxLength: 10 }), anyJson, { maxKeys: 4 })
  )
}).map(r => {
  const now = Date.now()
  return {
    issuer: r.issuer,
    fields: {
      type: r.type,
      version: '1.0',
      issued: now + r.issuedOffset,
      expires: now + r.issuedOffset + r.validity,
      issuer: { type: 'agent', key: '' },
      subject: { key: String(r.subject) },
      claims: r.claims
    }
  }
})

type RecordInput =
  | { kind: 'pool', at: number }
  | { kind: 'json', at: number, mutations: Parameters<typeof mutateJson>[1] }
  | { kind: 'bytes', at: number, mutations: Parameters<typeof mutateBytes>[1] }
  | { kind: 'fresh', fresh: { issuer: number, fields: Record<string, unknown> } }
  | { kind: 'any', value: unknown }
  | { kind: 'raw', bytes: Uint8Array }

const recordInput: fc.Arbitrary<RecordInput> = fc.oneof(
  { weight: 1, arbitrary: pick.map(at => ({ kind: 'pool' as const, at })) },
  { weight: 4, arbitrary: fc.tuple(pick, fc.array(jsonMutation, { minLength: 1, maxLength: 3 })).map(([at, mutations]) => ({ kind: 'json' as const, at, mutations })) },
  { weight: 3, arbitrary: fc.tuple(pick, fc.array(byteMutation, { minLength: 1, maxLength: 4 })).map(([at, mutations]) => ({ kind: 'bytes' as const, at, mutations })) },
  { weight: 2, arbitrary: freshFields.map(fresh => ({ kind: 'fresh' as const, fresh })) },
  { weight: 1, arbitrary: anyJson.map(value => ({ kind: 'any' as const, value })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map(bytes => ({ kind: 'raw' as const, bytes })) },
  // issue #15: deep, wide or string-held brackets in a record (the size limit cuts the deepest ones first)
  { weight: 1, arbitrary: pick.chain(at => nestingVariants(pool[at % pool.length] as unknown as Record<string, unknown>, ['claims', 'issuer', 'subject'], MAX_ATTESTATION_BYTES)).map(v => ({ kind: 'raw' as const, bytes: enc.encode(v.text) })) }
)

/** An input as the bytes gossip would carry, and as the JSON value submit() gets */
function materialize (input: RecordInput): { bytes: Uint8Array, value: unknown } {
  switch (input.kind) {
    case 'pool': {
      const rec = pool[input.at % pool.length]
      return { bytes: encodeAttestation(rec), value: structuredClone(rec) }
    }
    case 'json': {
      const value = mutateJson(pool[input.at % pool.length], input.mutations)
      let text: string | undefined
      try { text = JSON.stringify(value) } catch {}
      return { bytes: enc.encode(text ?? 'null'), value }
    }
    case 'bytes': {
      const bytes = mutateBytes(encodeAttestation(pool[input.at % pool.length]), input.mutations)
      let value: unknown = null
      try { value = JSON.parse(dec.decode(bytes)) } catch {}
      return { bytes, value }
    }
    case 'fresh': {
      const issuer = issuers[input.fresh.issuer % issuers.length]
      const keys = [victim.peerId.toString(), ...issuers.map(i => i.moltKey)]
      const subject = keys[Number((input.fresh.fields.subject as { key: string }).key) % keys.length]
      const fields = { ...input.fresh.fields, issuer: { type: 'agent', key: issuer.moltKey }, subject: { key: subject.startsWith('ed25519:') ? subject : keyOf(subject) } }
      try {
        const rec = sign(fields as unknown as UnsignedAttestation, issuer)
        // what signAttestation produced must pass verification (except the time checks, which depend on now)
        try { verifyAttestation(rec) } catch (err: any) { expect(['AttestationExpiredError', 'AttestationFutureError', 'SelfAttestationError']).toContain(err.name) }
        return { bytes: encodeAttestation(rec), value: rec }
      } catch (err) {
        expectNamed(err, 'signAttestation')
        return { bytes: enc.encode(JSON.stringify(fields)), value: fields }
      }
    }
    case 'any': {
      let text: string | undefined
      try { text = JSON.stringify(input.value) } catch {}
      return { bytes: enc.encode(text ?? 'null'), value: input.value }
    }
    case 'raw':
      return { bytes: input.bytes, value: null }
  }
}

// ------------------------------------------------------------------ records

describe('attestation decoder on its own', () => {
  it('decodeAttestation accepts only records their issuer signed; refuses the rest with a named error', () => {
    const outcomes: Record<string, number> = {}
    fc.assert(fc.property(recordInput, (input) => {
      const { bytes } = materialize(input)
      try {
        const verified = decodeAttestation(bytes)
        expectSigned(verified.record, 'decodeAttestation')
        expect(verified.issuer).toBe(peerIdOfKey(verified.record.issuer.key))
        expect(bytes.byteLength).toBeLessThanOrEqual(MAX_ATTESTATION_BYTES)
        outcomes.accepted = (outcomes.accepted ?? 0) + 1
      } catch (err: any) {
        if (err?.name === 'AssertionError' || err?.message?.startsWith('decodeAttestation')) throw err
        const name = expectNamed(err, 'decodeAttestation')
        outcomes[name] = (outcomes[name] ?? 0) + 1
      }
    }), { seed: FUZZ_SEED, numRuns: fuzzRuns(1000) })
    console.log(`[fuzz] trust decoder outcomes ${JSON.stringify(outcomes)}`)
    expect(outcomes.accepted).toBeGreaterThan(0)
    expect(Object.keys(outcomes).length).toBeGreaterThan(4)
  })
})

describe('a real node: gossip validator, submit() and /molt/trust-sync/1.0.0 over TCP', () => {
  it('accepts only signed records, refuses the rest by name, survives hostile sync sessions both ways; stays responsive', async () => {
    const runs = fuzzRuns(600)
    const validator = (victim.libp2p.services.pubsub as any).topicValidators.get(TOPIC) as (peer: any, msg: any) => Promise<TopicValidatorResult>
    expect(typeof validator).toBe('function')
    const outcomes: Record<string, number> = {}
    const count = (what: string): void => { outcomes[what] = (outcomes[what] ?? 0) + 1 }
    const attackerId = attacker.peerId
    const heapBefore = heapMiB()
    const probe = queryProbe(honest, victim.peerId, true)
    const started = performance.now()
    let inputs = 0

    // 1. the gossip topic validator, as gossipsub calls it: published by the issuer (or by someone else)
    const rejectedBefore = { ...victim.trust.stats().rejected }
    await fc.assert(fc.asyncProperty(recordInput, fc.boolean(), async (input, byIssuer) => {
      inputs++
      const { bytes, value } = materialize(input)
      const issuerKey = (value as any)?.issuer?.key
      let from = attackerId
      if (byIssuer && typeof issuerKey === 'string') { try { from = peerIdFromString(peerIdOfKey(issuerKey)) } catch {} }
      const result = await validator(attackerId, { type: 'signed', from, topic: TOPIC, data: bytes, sequenceNumber: 1n, signature: new Uint8Array(64), key: new Uint8Array(32) })
      expect([TopicValidatorResult.Accept, TopicValidatorResult.Reject, TopicValidatorResult.Ignore]).toContain(result)
      if (result === TopicValidatorResult.Accept) {
        const rec = JSON.parse(dec.decode(bytes)) as Attestation
        expectSigned(rec, 'gossip validator')
        expect(from.toString()).toBe(peerIdOfKey(rec.issuer.key))
      }
      count(`gossip:${result}`)
    }), { seed: FUZZ_SEED, numRuns: runs })
    const rejectedAfter = victim.trust.stats().rejected
    // every refusal was counted under a named error
    for (const name of Object.keys(rejectedAfter)) expect(TRUST_ERRORS.has(name), name).toBe(true)
    const refusedByName = Object.fromEntries(Object.entries(rejectedAfter).map(([k, v]) => [k, v - (rejectedBefore[k] ?? 0)]))

    // 2. trust.submit(): the API's path for a record handed in by an application
    await fc.assert(fc.asyncProperty(recordInput, async (input) => {
      inputs++
      const { value } = materialize(input)
      try {
        const kept = await victim.trust.submit(value)
        expectSigned(kept.attestation, 'submit')
        count('submit:accepted')
      } catch (err: any) {
        if (err?.name === 'AssertionError' || err?.message?.startsWith('submit')) throw err
        count(`submit:${expectNamed(err, 'submit')}`)
      }
    }), { seed: FUZZ_SEED + 1, numRuns: Math.ceil(runs / 3) })

    // 3. a hostile client of the node's sync server (the 10 s per-peer session limit is lifted for the
    //    fuzz by clearing the node's record of served peers before each session)
    const lastServed = (victim.trust as any).syncs.lastServed as Map<string, number>
    expect(lastServed).toBeInstanceOf(Map)
    const connection = await attacker.libp2p.dial(victim.getMultiaddrs()[0])
    await fc.assert(fc.asyncProperty(syncClientSession, async (frames) => {
      inputs += frames.length
      lastServed.clear()
      const stream = await connection.newStream(SYNC_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      const answers = collect(stream)
      for (const chunk of frames.map(f => encodeSyncInput(f))) {
        if (stream.writeStatus !== 'writable') break
        if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(10_000) }).catch(() => {})
      }
      if (stream.writeStatus === 'writable') stream.close().catch(() => {}) // half-close: the server reads our end
      // the server ends every session: after `done`, on a bad frame, or at our end of input
      await answers.ended(10_000)
      for (const frame of answers.frames()) {
        expect(['ids', 'records']).toContain(frame.t)
        if (frame.t === 'records') for (const r of frame.records as Attestation[]) expectSigned(r, 'sync server')
        count(`sync-server:${String(frame.t)}`)
      }
      count(`sync-server:${answers.how()}`)
      stream.abort(new Error('session over'))
    }), { seed: FUZZ_SEED + 2, numRuns: Math.ceil(runs / 6) })

    // 4. a hostile sync server the node pulls from
    await attacker.libp2p.unhandle(SYNC_PROTOCOL)
    let script: SyncServerInput[] = []
    await attacker.libp2p.handle(SYNC_PROTOCOL, (stream) => {
      const current = script
      void (async () => {
        const got = collect(stream)
        await got.first(5_000) // the node's digest
        for (const frame of current) {
          if (stream.writeStatus !== 'writable') break
          if (!stream.send(encodeSyncInput(frame))) await stream.onDrain({ signal: AbortSignal.timeout(5_000) }).catch(() => {})
          await new Promise(resolve => setTimeout(resolve, 0))
        }
        await stream.close({ signal: AbortSignal.timeout(5_000) }).catch(() => { stream.abort(new Error('done')) })
      })().catch(() => { stream.abort(new Error('hostile server failed')) })
    }, { maxInboundStreams: 64, runOnLimitedConnection: true })
    await fc.assert(fc.asyncProperty(syncServerSession, async (frames) => {
      inputs += frames.length
      script = frames
      try {
        const result = await victim.trust.sync(attacker.peerId)
        count(`sync-client:ok:${result.received > 0 ? 'received' : 'none'}`)
      } catch (err: any) {
        // the sync client's refusals: its own TrustSyncError, or the stream's (length prefix, EOF, reset, timeout)
        const name = String(err?.name)
        if (['TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'Error', 'undefined'].includes(name)) {
          throw new Error(`sync client refused with an unnamed error ${name}: ${err?.message}\n${err?.stack}`)
        }
        count(`sync-client:${name}`)
      }
    }), { seed: FUZZ_SEED + 3, numRuns: Math.ceil(runs / 15) })

    // nothing unsigned ever reached the store
    for (const r of await victim.trust.list({ limit: 1_000_000, includeRevoked: true })) {
      if (r.attestation.issuer.key !== (victim as any).identity.moltKey) expectSigned(r.attestation, 'store')
    }

    const seconds = (performance.now() - started) / 1000
    const latency = await probe.stop()
    const heapAfter = heapMiB()
    await report('trust', { inputs, seconds: Math.round(seconds * 10) / 10, outcomes, refusedByName, honestLatencyMs: latency, heapBeforeMiB: heapBefore, heapAfterMiB: heapAfter, stored: victim.trust.stats().stored })
    expect(outcomes['gossip:accept']).toBeGreaterThan(0)
    // each gossip Reject is counted under a named error
    expect(Object.values(refusedByName).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(outcomes['gossip:reject'] ?? 0)
    expect(outcomes['submit:accepted']).toBeGreaterThan(0)
    // the honest peer was served throughout (its latency is reported above; speed is for npm run bench)
    expect(probe.failures.map(err => `${(err as Error).name}: ${(err as Error).message}`)).toEqual([])
    expect(latency.requests).toBeGreaterThan(10)
  }, 1_800_000)
})

// ------------------------------------------------------------------ sync sessions

type SyncFrame = { kind: 'frame', value: unknown } | { kind: 'raw', bytes: Uint8Array } | { kind: 'lie', lie: (n: number) => Uint8Array, body: Uint8Array }
type SyncServerInput = SyncFrame

const hexId = hex(64)
const knownId = pick.map(at => pool[at % pool.length].id)
const someIds = fc.array(fc.oneof(knownId, hexId, fc.string({ maxLength: 70 })), { maxLength: 30 })
const digest = fc.oneof(
  fc.constant(null).map(() => Array.from({ length: SYNC_BUCKETS }, () => '')),
  fc.array(fc.oneof(fc.constant(''), fc.tuple(fc.integer({ min: 0, max: 1e9 }), hex(32)).map(([n, h]) => `${n}:${h}`), fc.string({ maxLength: 12 })), { minLength: 0, maxLength: SYNC_BUCKETS + 2 })
)
const wellFormed = (value: Record<string, unknown>): fc.Arbitrary<SyncFrame> => fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'frame' as const, value }) },
  { weight: 2, arbitrary: fc.array(jsonMutation, { minLength: 1, maxLength: 2 }).map(ms => ({ kind: 'frame' as const, value: mutateJson(value, ms) })) }
)
const rawFrame: fc.Arbitrary<SyncFrame> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map(bytes => ({ kind: 'raw' as const, bytes })),
  fc.tuple(lyingLength, fc.uint8Array({ maxLength: 40 })).map(([lie, body]) => ({ kind: 'lie' as const, lie, body })),
  fc.tuple(fc.array(byteMutation, { minLength: 1, maxLength: 3 }), someIds).map(([ms, ids]) => ({ kind: 'raw' as const, bytes: mutateBytes(lp(enc.encode(JSON.stringify({ t: 'want', ids }))), ms) })),
  anyJson.map(value => ({ kind: 'frame' as const, value })),
  // issue #15: a sync frame nested deep (to 100,000), wide, or with brackets in strings
  fc.constantFrom({ t: 'want', ids: [] }, { t: 'records', records: [] }, { t: 'digest', d: [] }).chain(base => nestingVariants(base, ['records', 'ids'], MAX_SYNC_FRAME_BYTES)).map(v => ({ kind: 'raw' as const, bytes: lp(enc.encode(v.text)) }))
)

/** What a hostile client sends: a digest, wants, maybe done, and garbage anywhere */
const syncClientSession: fc.Arbitrary<SyncFrame[]> = fc.tuple(
  digest.chain(d => wellFormed({ t: 'digest', d })),
  fc.array(someIds.chain(ids => wellFormed({ t: 'want', ids })), { maxLength: 4 }),
  fc.option(wellFormed({ t: 'done' }), { nil: undefined }),
  fc.option(rawFrame, { nil: undefined, freq: 3 }),
  fc.nat()
).map(([d, wants, done, raw, at]) => {
  const frames = [d, ...wants, ...(done !== undefined ? [done] : [])]
  if (raw !== undefined) frames.splice(at % (frames.length + 1), 0, raw)
  return frames
})

/** A record as a hostile server hands it over: as signed, mutated, or made up */
const servedRecord = fc.oneof(
  knownId.map(id => signed.get(id) as unknown),
  fc.tuple(pick, fc.array(jsonMutation, { minLength: 1, maxLength: 2 })).map(([at, ms]) => mutateJson(pool[at % pool.length], ms)),
  anyJson
)

/** What a hostile server answers to the node's digest: ids, then records for wants (asked or not) */
const syncServerSession: fc.Arbitrary<SyncFrame[]> = fc.tuple(
  fc.oneof(knownId.map(id => [id]), someIds, fc.constant(null).map(() => pool.map(r => r.id))).chain(ids => wellFormed({ t: 'ids', ids })),
  fc.array(fc.array(servedRecord, { maxLength: 6 }).chain(records => wellFormed({ t: 'records', records })), { maxLength: 3 }),
  fc.option(rawFrame, { nil: undefined, freq: 3 }),
  fc.nat()
).map(([ids, records, raw, at]) => {
  const frames = [ids, ...records]
  if (raw !== undefined) frames.splice(at % (frames.length + 1), 0, raw)
  return frames
})

function lp (body: Uint8Array): Uint8Array {
  return concat(varint(body.length), body)
}

function encodeSyncInput (input: SyncFrame): Uint8Array {
  if (input.kind === 'raw') return input.bytes
  if (input.kind === 'lie') return concat(input.lie(input.body.length), input.body)
  let text: string | undefined
  try { text = JSON.stringify(input.value) } catch {}
  return lp(enc.encode(text ?? 'null'))
}

/** Everything a stream receives, decoded as length-prefixed JSON frames, and how it ended */
function collect (stream: Stream): { frames: () => Array<Record<string, unknown>>, ended: (ms: number) => Promise<void>, first: (ms: number) => Promise<void>, how: () => string } {
  let buffer: Uint8Array = new Uint8Array(0)
  let ending = 'open'
  /** wakes the waiter (if any) on every event of the stream */
  const changes = new Changes()
  stream.addEventListener('message', (evt) => { buffer = concat(buffer, evt.data.subarray()); changes.changed() })
  stream.addEventListener('remoteCloseWrite', () => { if (ending === 'open') ending = 'closed'; changes.changed() })
  stream.addEventListener('close', (evt: any) => { if (ending === 'open') ending = evt.error != null ? 'aborted' : 'closed'; changes.changed() })
  const frames = (): Array<Record<string, unknown>> => {
    const out: Array<Record<string, unknown>> = []
    let at = 0
    while (at < buffer.length) {
      let length = 0
      let shift = 0
      let i = at
      for (; i < buffer.length; i++) {
        length += (buffer[i] & 0x7f) * 2 ** shift
        shift += 7
        if ((buffer[i] & 0x80) === 0) break
      }
      if (i >= buffer.length || length > MAX_SYNC_FRAME_BYTES || i + 1 + length > buffer.length) break
      out.push(JSON.parse(dec.decode(buffer.subarray(i + 1, i + 1 + length))))
      at = i + 1 + length
    }
    return out
  }
  const wait = async (done: () => boolean, ms: number, what: string): Promise<void> =>
    changes.until(done, ms, () => new Error(`sync stream: no ${what} within ${ms} ms (received ${buffer.length} bytes)`))
  return {
    frames,
    ended: async (ms) => wait(() => ending !== 'open', ms, 'end'),
    first: async (ms) => wait(() => buffer.length > 0 || ending !== 'open', ms, 'first frame'),
    how: () => ending
  }
}
