/**
 * Key rotation statements (src/identity/rotation/): both signatures, the chain
 * rules (forged, swapped, replayed, stale seq), the grace period on an
 * injected clock, the data dir's files, and the trust service's part
 * (key-rotations.ts with a stubbed gossipsub and a real LevelDB)
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes, sign } from 'node:crypto'
import { defaultLogger } from '@libp2p/logger'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import {
  signRotation, verifyRotation, decodeRotation, rotationId, RotationChain, rotateKeyFiles, finishPendingRotation, loadOwnRotations,
  RotationSignatureError, RotationConflictError, InvalidRotationError, KeyRotationError, ROTATION_GRACE_PERIOD, NEXT_KEY_FILE, OLD_KEY_CONTEXT,
  type KeyRotation
} from '../../src/identity/rotation/index.js'
import { identityFromKey, loadKey, loadOrCreateKey, type Identity } from '../../src/identity/index.js'
import { canonicalize } from '../../src/moltspeak/index.js'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { KeyRotations } from '../../src/services/trust/key-rotations.js'
import { RecordIntake } from '../../src/services/trust/intake.js'
import { rotatedInputs } from '../../src/services/trust/rotated-model.js'
import { TrustModel } from '../../src/services/trust/model/index.js'
import { newIdentity } from '../support/trust.js'

const T0 = 1_800_000_000_000

async function three (): Promise<[Identity, Identity, Identity]> {
  return [await newIdentity(), await newIdentity(), await newIdentity()]
}

describe('rotation statements', () => {
  it('a statement signed by both keys verifies and survives encoding', async () => {
    const [a, b] = await three()
    const r = signRotation(a, b, { seq: 1, issued: T0 })
    expect(verifyRotation(decodeRotation(canonicalize(r)))).toEqual(r)
    expect(r).toMatchObject({ v: 1, type: 'molt-key-rotation', old_key: a.moltKey, new_key: b.moltKey, seq: 1, issued: T0 })
  })

  it('refuses a statement signed by only one of the keys', async () => {
    const [a, b, mallory] = await three()
    // the new key's signature made by someone else: the old key alone cannot hand its identity over
    const oldOnly = { ...signRotation(a, b, { seq: 1, issued: T0 }), sig_new: signRotation(a, mallory, { seq: 1, issued: T0 }).sig_new }
    expect(() => verifyRotation(oldOnly)).toThrow(RotationSignatureError)
    expect(() => verifyRotation(oldOnly)).toThrow(/new key/)
    // an attacker's new key claiming a victim's old one
    const newOnly = { ...signRotation(a, b, { seq: 1, issued: T0 }), sig_old: signRotation(mallory, b, { seq: 1, issued: T0 }).sig_old }
    expect(() => verifyRotation(newOnly)).toThrow(/old key/)
    const { sig_new: _, ...missing } = signRotation(a, b, { seq: 1, issued: T0 })
    expect(() => verifyRotation(missing)).toThrow(InvalidRotationError)
  })

  it('refuses the signatures in the wrong order (swapped, or old and new keys exchanged)', async () => {
    const [a, b] = await three()
    const r = signRotation(a, b, { seq: 1, issued: T0 })
    expect(() => verifyRotation({ ...r, sig_old: r.sig_new, sig_new: r.sig_old })).toThrow(RotationSignatureError)
    // the same two signatures over "b → a": each key signed its own role only
    expect(() => verifyRotation({ ...r, old_key: b.moltKey, new_key: a.moltKey, sig_old: r.sig_new, sig_new: r.sig_old })).toThrow(RotationSignatureError)
    // a plain signature without the role's context does not count either
    const { sig_old: _o, sig_new: _n, ...unsigned } = r
    const plain = 'ed25519:' + sign(null, Buffer.from(canonicalize(unsigned)), a.signingKey).toString('base64')
    expect(() => verifyRotation({ ...r, sig_old: plain })).toThrow(/old key/)
    expect(OLD_KEY_CONTEXT).toMatch(/old/)
  })

  it('bounds size and fields before trusting anything', async () => {
    const [a, b] = await three()
    const r = signRotation(a, b, { seq: 1, issued: T0 })
    expect(() => decodeRotation('{"v":1,' + ' '.repeat(3000) + '}')).toThrow(/bytes/)
    expect(() => decodeRotation('[[[[[]]]]]')).toThrow(InvalidRotationError)
    expect(() => decodeRotation(canonicalize({ ...r, extra: 1 }))).toThrow(/unknown field extra/)
    expect(() => decodeRotation(canonicalize({ ...r, seq: 0 }))).toThrow(/seq/)
    expect(() => decodeRotation(canonicalize({ ...r, new_key: r.old_key }))).toThrow(/another key/)
  })

  it('hostile input only ever fails as InvalidRotationError or RotationSignatureError', async () => {
    const [a, b] = await three()
    const good = Buffer.from(canonicalize(signRotation(a, b, { seq: 1, issued: T0 })))
    for (let i = 0; i < 500; i++) {
      // random bytes, and the valid statement with bytes flipped
      const input = i % 2 === 0 ? randomBytes(i % 300) : Buffer.from(good.map((byte, j) => j === i % good.length ? byte ^ (1 + (i % 255)) : byte))
      try {
        verifyRotation(decodeRotation(input))
      } catch (err: any) {
        expect(['InvalidRotationError', 'RotationSignatureError']).toContain(err.name)
      }
    }
  })
})

describe('rotation chains', () => {
  it('follows old → new → newer and refuses the old keys after the grace period only', async () => {
    const [a, b, c] = await three()
    const chain = new RotationChain()
    const ab = signRotation(a, b, { seq: 1, issued: T0 })
    const bc = signRotation(b, c, { seq: 2, issued: T0 + 1000 })
    // out of order: the later statement first
    expect(chain.add(bc, T0)).toBe(true)
    expect(chain.add(ab, T0)).toBe(true)
    const [pa, pb, pc] = [a, b, c].map(i => i.peerId.toString())
    expect(chain.current(pa)).toBe(pc)
    expect(chain.current(pb)).toBe(pc)
    expect(chain.current(pc)).toBe(pc)
    expect(chain.history(pc)).toEqual([pa, pb])
    expect(chain.refused(pa, T0 + ROTATION_GRACE_PERIOD - 1)).toBe(false)
    expect(chain.refused(pa, T0 + ROTATION_GRACE_PERIOD)).toBe(true)
    expect(chain.refused(pc, T0 + 10 * ROTATION_GRACE_PERIOD)).toBe(false)
  })

  it('a replayed statement is a no-op; a stale seq, a second rotation of one key, a taken or retired key are refused', async () => {
    const [a, b, c] = await three()
    const d = await newIdentity()
    const chain = new RotationChain()
    const ab = signRotation(a, b, { seq: 1, issued: T0 })
    chain.add(ab, T0)
    expect(chain.add(ab, T0 + 5)).toBe(false)
    expect(chain.add(JSON.parse(JSON.stringify(ab)), T0)).toBe(false)
    // old sequence: b came in with seq 1, so its rotation must be seq 2
    expect(() => chain.add(signRotation(b, c, { seq: 1, issued: T0 + 1 }), T0)).toThrow(RotationConflictError)
    expect(() => chain.add(signRotation(b, c, { seq: 3, issued: T0 + 1 }), T0)).toThrow(/must be 2/)
    // the old key signs another way out (a leaked old key cannot take the identity elsewhere)
    expect(() => chain.add(signRotation(a, c, { seq: 1, issued: T0 + 1 }), T0)).toThrow(/rotated to .* already/)
    // a key brought in twice, and a retired key brought back
    expect(() => chain.add(signRotation(c, b, { seq: 1, issued: T0 + 1 }), T0)).toThrow(/brought in once/)
    expect(() => chain.add(signRotation(b, a, { seq: 2, issued: T0 + 1 }), T0)).toThrow(/never comes back/)
    // the longer way round too: c → a after a → b → c
    const cycle = new RotationChain()
    cycle.add(ab, T0)
    cycle.add(signRotation(b, c, { seq: 2, issued: T0 + 1 }), T0)
    expect(() => cycle.add(signRotation(c, a, { seq: 3, issued: T0 + 2 }), T0)).toThrow(/never comes back/)
    // issued before the rotation that brought b in
    expect(() => chain.add(signRotation(b, d, { seq: 2, issued: T0 - 1 }), T0)).toThrow(/before/)
    expect(() => chain.add(signRotation(c, d, { seq: 1, issued: T0 + 3_600_000 }), T0)).toThrow(/future/)
    expect(chain.size).toBe(1)
    expect(chain.add(signRotation(b, c, { seq: 2, issued: T0 + 1 }), T0)).toBe(true)
  })

  it('moves the trust inputs to the newest key: records about and by the old key, and experience', async () => {
    const [a, b, c] = await three()
    const self = (await newIdentity()).peerId.toString()
    const chain = new RotationChain()
    chain.add(signRotation(a, b, { seq: 1, issued: T0 }), T0)
    const [pa, pb, pc] = [a, b, c].map(i => i.peerId.toString())
    const signals = [
      { id: '01', issuer: self, subject: pa, type: 'endorsement' as const, strength: 'strong' as const, issued: T0 - 1000, expires: T0 + 1e10 },
      { id: '02', issuer: pa, subject: pc, type: 'endorsement' as const, strength: 'moderate' as const, issued: T0 - 1000, expires: T0 + 1e10 },
      // a record the old key made about the new one would be the identity vouching for itself
      { id: '03', issuer: pa, subject: pb, type: 'endorsement' as const, strength: 'strong' as const, issued: T0 - 1000, expires: T0 + 1e10 }
    ]
    const experience = new Map([[pa, { success: 3, failure: 0, at: T0 }], [pb, { success: 2, failure: 1, at: T0 + 1 }]])
    const mapped = rotatedInputs(signals, experience, p => chain.current(p))
    expect(mapped.signals.map(s => [s.issuer, s.subject])).toEqual([[self, pb], [pb, pc]])
    expect(mapped.experience.get(pb)).toEqual({ success: 5, failure: 1, at: T0 + 1 })
    // the old key's standing, scored under the new key: the same figures
    const history = signals.slice(0, 2)
    const seen = new Map([[pa, experience.get(pa) as any]])
    const before = new TrustModel({ self, signals: history, experience: seen }).score(pa, { now: T0 + 10 })
    const moved = rotatedInputs(history, seen, p => chain.current(p))
    const after = new TrustModel({ self, signals: moved.signals, experience: moved.experience }).score(pb, { now: T0 + 10 })
    expect(before.score).toBeGreaterThan(0.5)
    expect(after.score).toBeCloseTo(before.score, 9)
    expect(after.confidence).toBeCloseTo(before.confidence, 9)
    // without the mapping the new key is a stranger
    expect(new TrustModel({ self, signals: history, experience: seen }).score(pb, { now: T0 + 10 }).score).toBe(0.5)
  })
})

describe('key files', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'molt-rotate-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('switches identity.key, keeps the old key 0600 for the grace period, counts seq up', async () => {
    const { key } = await loadOrCreateKey(join(dir, 'identity.key'))
    const first = await rotateKeyFiles(dir, { now: T0 })
    expect(first.oldPeerId).toBe(identityFromKey(key).peerId.toString())
    expect(identityFromKey(await loadKey(join(dir, 'identity.key')) as any).peerId.toString()).toBe(first.newPeerId)
    expect(verifyRotation(first.rotation).seq).toBe(1)
    expect((await stat(first.retiredKeyPath)).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    const second = await rotateKeyFiles(dir, { now: T0 + 1000 })
    expect(second.rotation.seq).toBe(2)
    expect(second.oldPeerId).toBe(first.newPeerId)
    const chain = new RotationChain()
    for (const r of await loadOwnRotations(dir)) chain.add(r, T0 + 2000)
    expect(chain.current(first.oldPeerId)).toBe(second.newPeerId)
    // a running node on the first new key cannot rotate again: it must restart on the newest key first
    await expect(rotateKeyFiles(dir, { expectedPeerId: first.newPeerId })).rejects.toThrow(KeyRotationError)
    // start after the grace period: the retired keys are deleted
    await finishPendingRotation(dir, T0 + 1000 + ROTATION_GRACE_PERIOD)
    expect(await readdir(join(dir, 'retired-keys'))).toEqual([])
  })

  it('a crash after the statement was written is finished at the next start; one before it is undone', async () => {
    await loadOrCreateKey(join(dir, 'identity.key'))
    const rotated = await rotateKeyFiles(dir, { now: T0 })
    // simulate the crash between writing the statement and renaming: put the old key back, the new one aside
    const { rename, link, unlink } = await import('node:fs/promises')
    await rename(join(dir, 'identity.key'), join(dir, NEXT_KEY_FILE))
    await link(rotated.retiredKeyPath, join(dir, 'identity.key'))
    await finishPendingRotation(dir, T0)
    expect(identityFromKey(await loadKey(join(dir, 'identity.key')) as any).peerId.toString()).toBe(rotated.newPeerId)
    // a next key without a statement (crash before step 2) is dropped: the identity stays
    await unlink(join(dir, 'identity.key'))
    await rename(rotated.retiredKeyPath, join(dir, 'identity.key'))
    await writeFile(join(dir, 'key-rotations.json'), '[]\n', { mode: 0o600 })
    const orphan = await mkdtemp(join(tmpdir(), 'molt-rotate-orphan-'))
    const { key } = await loadOrCreateKey(join(orphan, 'k'))
    await rm(orphan, { recursive: true })
    const { writeKeyFile } = await import('../../src/identity/key-file.js')
    await writeKeyFile(join(dir, NEXT_KEY_FILE), key)
    await finishPendingRotation(dir, T0)
    expect(identityFromKey(await loadKey(join(dir, 'identity.key')) as any).peerId.toString()).toBe(rotated.oldPeerId)
    expect(await readdir(dir)).not.toContain(NEXT_KEY_FILE)
  })

  it('a data dir without a key is an error, nothing is created', async () => {
    await expect(rotateKeyFiles(dir)).rejects.toThrow(/no agent key/)
    expect(await readdir(dir)).toEqual([])
  })
})

describe('key rotations in the trust service', () => {
  let dir: string
  let db: Database
  let now: number
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'molt-rotations-'))
    db = await openDatabase(join(dir, 'db'))
    now = T0
  })
  afterEach(async () => {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  })

  function setup (): { rotations: KeyRotations, intake: RecordIntake, pubsub: any } {
    const published: Uint8Array[] = []
    const pubsub: any = { published, topicValidators: new Map(), subscribe: () => {}, unsubscribe: () => {}, addEventListener: () => {}, removeEventListener: () => {}, publish: async (_t: string, data: Uint8Array) => { published.push(data); return { recipients: [] } } }
    const intake = new RecordIntake({} as any, defaultLogger().forComponent('test'))
    return { rotations: new KeyRotations(pubsub, { db, intake, now: () => now }), intake, pubsub }
  }

  function message (from: Identity, data: unknown): Message {
    return { type: 'signed', from: from.peerId, data: new TextEncoder().encode(typeof data === 'string' ? data : canonicalize(data)), topic: 'molt/key-rotation/1', sequenceNumber: 1n, signature: new Uint8Array(), key: from.privateKey.publicKey } as any
  }

  it('gossip: accepts a valid statement once, rejects forged ones, ignores a conflicting one; kept across restarts and offered to sync', async () => {
    const [a, b, c] = await three()
    const { rotations, intake } = setup()
    const ab = signRotation(a, b, { seq: 1, issued: T0 })
    expect(await rotations.validate(a.peerId, message(a, ab))).toBe(TopicValidatorResult.Accept)
    expect(await rotations.validate(c.peerId, message(a, ab))).toBe(TopicValidatorResult.Ignore)
    const forged: KeyRotation = { ...signRotation(a, c, { seq: 1, issued: T0 }), sig_new: ab.sig_new }
    expect(await rotations.validate(c.peerId, message(c, forged))).toBe(TopicValidatorResult.Reject)
    expect(await rotations.validate(c.peerId, message(c, signRotation(a, c, { seq: 1, issued: T0 + 1 })))).toBe(TopicValidatorResult.Ignore)
    expect(await rotations.validate(c.peerId, message(c, '{"v":1'))).toBe(TopicValidatorResult.Reject)
    expect(intake.rejected).toMatchObject({ RotationSignatureError: 1, RotationConflictError: 1, InvalidRotationError: 1 })
    expect(rotations.chain.current(a.peerId.toString())).toBe(b.peerId.toString())
    const id = rotationId(ab)
    expect(rotations.has(id)).toBe(true)
    expect(rotations.wire(id)).toEqual({ id, key_rotation: ab })
    expect(rotations.digest().filter(d => d !== '').length).toBe(1)
    // a sync record whose id is not the statement's is the peer's fault
    await expect(rotations.addFromSync({ id: '00'.repeat(32), key_rotation: signRotation(b, c, { seq: 2, issued: T0 }) })).rejects.toThrow(/as 0000/)

    const again = setup().rotations
    await again.open()
    expect(again.chain.current(a.peerId.toString())).toBe(b.peerId.toString())
    expect(again.size).toBe(1)
  })

  it('the injected clock decides when the old key is refused', async () => {
    const [a, b] = await three()
    const { rotations } = setup()
    await rotations.add(signRotation(a, b, { seq: 1, issued: T0 }))
    now = T0 + ROTATION_GRACE_PERIOD - 1
    expect(rotations.chain.refused(a.peerId.toString(), rotations.now())).toBe(false)
    now = T0 + ROTATION_GRACE_PERIOD
    expect(rotations.chain.refused(a.peerId.toString(), rotations.now())).toBe(true)
    expect(rotations.chain.refused(b.peerId.toString(), rotations.now())).toBe(false)
  })
})
