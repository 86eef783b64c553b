import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { Sealer, SEAL_VERSION } from '../../src/crypto/index.js'

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
