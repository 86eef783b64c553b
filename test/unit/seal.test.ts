import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { Sealer, SEAL_VERSION, SealError, ed25519PublicToX25519, ed25519SeedToX25519 } from '../../src/crypto/index.js'

describe('sealed boxes', () => {
  it('open what was sealed for the pair, lead with the format version, and refuse another version by name', async () => {
    const a = await generateKeyPair('Ed25519') as Ed25519PrivateKey
    const b = await generateKeyPair('Ed25519') as Ed25519PrivateKey
    const parties = { sender: a.publicKey.raw, recipient: b.publicKey.raw, id: 'msg-1' }
    const box = new Sealer(a.raw.subarray(0, 32), a.publicKey.raw).seal(Buffer.from('hello'), parties)
    expect(box[0]).toBe(SEAL_VERSION)
    const recipient = new Sealer(b.raw.subarray(0, 32), b.publicKey.raw)
    expect(Buffer.from(recipient.open(box, parties)).toString()).toBe('hello')
    // two boxes of one pair never share a nonce
    const again = new Sealer(a.raw.subarray(0, 32), a.publicKey.raw).seal(Buffer.from('hello'), parties)
    expect(Buffer.from(again.subarray(1, 13)).equals(Buffer.from(box.subarray(1, 13)))).toBe(false)
    const old = Uint8Array.from(box)
    old[0] = 1
    expect(() => recipient.open(old, parties)).toThrow(/unknown sealed box version 1/)
  })
})

/**
 * Vectors written by the hand-written BigInt conversion this file used before
 * @noble/curves (seeds: SHA-256 of "molt seal vector A"/"B"), and checked
 * against libsodium's crypto_sign_ed25519_{pk,sk}_to_curve25519 (PyNaCl):
 * the derived X25519 keys, and so every box, must stay byte for byte the same.
 */
const VECTOR = {
  aSeed: 'c0bce57c42ed4f91d3819884a7c05aead48b80eccb8631199dd18e7094de61d3',
  bSeed: '42fa308663e4203ec2ecc2b1cdbdba147aac4b33eec2248b4d32c666ebcdd7d8',
  aPub: '7aeaf659c967e1a4602b04e7e3268a63c389cd0b67b7cec14e16bc3d3b01eff8',
  bPub: '75c7bea5299a06c2c44c2eb9f460f3292ccd3cadb9e5dec0c5bcf84e7695e18d',
  aXPub: '920038b7645b3056b0f55b7cdf0592499be807d5b840283ce971a2c6defc143b',
  bXPub: 'a7b5898a00c908c08418f3f149f442c23923cc27b88e36c4c3db0c916aa5f73d',
  aXSecret: 'a0493d101b5a91d0ea90655cf21c9d5594dbe61092629c78ec548284424e3d63',
  bXSecret: '4826fcd34ce784c85f990f7c1dceb2dae94b262b2c574f15d064720abf27c670',
  /** Sealed by A for B, id "vector-1", plaintext {"hello":"molt"} */
  box: '023ee2ffe83da8ccc4064fb1aeb97e61da94f9f36ee61830040e4729ab5d84fdd0d2e2bdd9abb4e876b594a637'
}
const hex = (value: string): Buffer => Buffer.from(value, 'hex')

describe('sealed boxes between many pairs', () => {
  it('use each pair\'s own key when pairs alternate, even when a caller rewrites its key array in place', async () => {
    // the sealer keeps the pair it used last (a drain opens thousands of one pair in a row): it must compare contents
    const keys = await Promise.all([0, 1, 2].map(async () => await generateKeyPair('Ed25519') as Ed25519PrivateKey))
    const [a, b, c] = keys.map(k => ({ key: k, sealer: new Sealer(k.raw.subarray(0, 32), k.publicKey.raw) }))
    const recipient = Uint8Array.from(b.key.publicKey.raw)
    const forB = a.sealer.seal(Buffer.from('to b'), { sender: a.key.publicKey.raw, recipient, id: '1' })
    recipient.set(c.key.publicKey.raw)
    const forC = a.sealer.seal(Buffer.from('to c'), { sender: a.key.publicKey.raw, recipient, id: '1' })
    const from = { sender: a.key.publicKey.raw, id: '1' }
    expect(Buffer.from(b.sealer.open(forB, { ...from, recipient: b.key.publicKey.raw })).toString()).toBe('to b')
    expect(Buffer.from(c.sealer.open(forC, { ...from, recipient: c.key.publicKey.raw })).toString()).toBe('to c')
    expect(() => c.sealer.open(forB, { ...from, recipient: c.key.publicKey.raw })).toThrow(SealError)
    // the recipient's side: boxes of two senders, alternately
    const fromC = c.sealer.seal(Buffer.from('c to b'), { sender: c.key.publicKey.raw, recipient: b.key.publicKey.raw, id: '2' })
    for (let i = 0; i < 3; i++) {
      expect(Buffer.from(b.sealer.open(forB, { ...from, recipient: b.key.publicKey.raw })).toString()).toBe('to b')
      expect(Buffer.from(b.sealer.open(fromC, { sender: c.key.publicKey.raw, recipient: b.key.publicKey.raw, id: '2' })).toString()).toBe('c to b')
      expect(() => b.sealer.open(fromC, { sender: a.key.publicKey.raw, recipient: b.key.publicKey.raw, id: '2' })).toThrow(SealError)
    }
  })
})

describe('sealed box format vectors', () => {
  it('derive the X25519 keys libsodium derives', () => {
    expect(Buffer.from(ed25519PublicToX25519(hex(VECTOR.aPub))).toString('hex')).toBe(VECTOR.aXPub)
    expect(Buffer.from(ed25519PublicToX25519(hex(VECTOR.bPub))).toString('hex')).toBe(VECTOR.bXPub)
    expect(Buffer.from(ed25519SeedToX25519(hex(VECTOR.aSeed))).toString('hex')).toBe(VECTOR.aXSecret)
    expect(Buffer.from(ed25519SeedToX25519(hex(VECTOR.bSeed))).toString('hex')).toBe(VECTOR.bXSecret)
  })

  it('open a box sealed before, and seal the same bytes again under its nonce', () => {
    const parties = { sender: hex(VECTOR.aPub), recipient: hex(VECTOR.bPub), id: 'vector-1' }
    const recipient = new Sealer(hex(VECTOR.bSeed), hex(VECTOR.bPub))
    expect(Buffer.from(recipient.open(hex(VECTOR.box), parties)).toString()).toBe('{"hello":"molt"}')
    const nonce = hex(VECTOR.box).subarray(1, 13)
    const sender = new Sealer(hex(VECTOR.aSeed), hex(VECTOR.aPub), 16, (bytes) => Buffer.concat([nonce, Buffer.alloc(bytes - nonce.byteLength)]))
    expect(Buffer.from(sender.seal(Buffer.from('{"hello":"molt"}'), parties)).toString('hex')).toBe(VECTOR.box)
  })

  it('refuse a public key that is not a point of the curve, by name', () => {
    // y = 2 has no x on Ed25519; the old arithmetic mapped it to some u anyway
    const notOnCurve = Buffer.alloc(32)
    notOnCurve[0] = 2
    expect(() => ed25519PublicToX25519(notOnCurve)).toThrow(SealError)
    const identity = Buffer.alloc(32)
    identity[0] = 1
    expect(() => ed25519PublicToX25519(identity)).toThrow(SealError)
  })
})
