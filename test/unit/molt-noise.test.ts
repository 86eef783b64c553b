/**
 * transport/noise.ts: each Noise message leaves in one transport write (its
 * length and ciphertext joined); lengths are read without a thrown RangeError
 * per read; the size-chosen cipher interoperates with Noise's own (issue #19).
 */
import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { asCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import type { MessageStream } from '@libp2p/interface'
import { Uint8ArrayList as UintList, type Uint8ArrayList } from 'uint8arraylist'
import { moltNoise, noiseCrypto } from '../../src/transport/noise.js'
import { NATIVE_CIPHER_FROM_BYTES } from '../../src/transport/constants.js'

async function securedPair (): Promise<{ outbound: MessageStream, inbound: MessageStream, transport: MessageStream, writes: Array<Uint8Array | Uint8ArrayList> }> {
  const [a, b] = multiaddrConnectionPair()
  const encrypter = async (): Promise<ReturnType<ReturnType<typeof moltNoise>>> => moltNoise()({ privateKey: await generateKeyPair('Ed25519'), logger: defaultLogger() } as any)
  const [left, right] = await Promise.all([encrypter(), encrypter()])
  // what the transport's own send() is given (below the encrypter's joining of chunks)
  const writes: Array<Uint8Array | Uint8ArrayList> = []
  const send = a.send.bind(a)
  a.send = (data) => {
    writes.push(data)
    return send(data)
  }
  const [outbound, inbound] = await Promise.all([
    left.secureOutbound(a, { skipStreamMuxerNegotiation: true }),
    right.secureInbound(b, { skipStreamMuxerNegotiation: true })
  ])
  writes.length = 0 // the handshake's
  return { outbound: outbound.connection, inbound: inbound.connection, transport: a, writes }
}

/** Resolves with everything `stream` received once `bytes` bytes arrived */
async function receive (stream: MessageStream, bytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let length = 0
  return new Promise(resolve => {
    stream.addEventListener('message', (evt) => {
      chunks.push(evt.data.subarray())
      length += evt.data.byteLength
      if (length >= bytes) resolve(Buffer.concat(chunks))
    })
  })
}

describe('molt Noise', () => {
  it('hands the transport each Noise message as one buffer: one write(2), not the length and the ciphertext apart', async () => {
    const { outbound, inbound, writes } = await securedPair()
    const parts = [12, 1100, 100].map((size, n) => new Uint8Array(size).fill(n + 1))
    const received = receive(inbound, parts.reduce((sum, part) => sum + part.byteLength, 0))
    for (const part of parts) outbound.send(part)
    expect(Buffer.from(await received)).toEqual(Buffer.concat(parts))
    expect(writes).toHaveLength(parts.length)
    for (const [i, write] of writes.entries()) {
      expect(write).toBeInstanceOf(Uint8Array)
      expect(write.byteLength).toBe(2 + parts[i].byteLength + 16)
    }
  })

  it('reads Noise lengths without an exception at the end of each read, and every message still arrives whole', async () => {
    const { outbound, inbound } = await securedPair()
    // the installed Noise has the decoder quietLengths expects (an upgrade that changes it fails here, not silently)
    const decoder = (inbound as unknown as { decoder: { lengthDecoder: (data: Uint8ArrayList) => number } }).decoder
    expect(decoder.lengthDecoder(new UintList())).toBe(0)
    expect(decoder.lengthDecoder(new UintList(Uint8Array.of(1)))).toBe(0)
    expect(decoder.lengthDecoder(new UintList(Uint8Array.of(1, 2)))).toBe(258)
    const parts = Array.from({ length: 40 }, (_, i) => new Uint8Array(1 + i * 97).fill(i))
    const total = parts.reduce((sum, part) => sum + part.byteLength, 0)
    const received = receive(inbound, total)
    for (const [i, part] of parts.entries()) {
      outbound.send(part)
      if (i % 3 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    expect(Buffer.from(await received)).toEqual(Buffer.concat(parts))
  })

  it('seals with OpenSSL from NATIVE_CIPHER_FROM_BYTES and with WebAssembly below, each readable by the other', () => {
    const k = new Uint8Array(32).fill(3)
    const nonce = new Uint8Array(12)
    const ad = new Uint8Array(0)
    for (const size of [12, NATIVE_CIPHER_FROM_BYTES - 1, NATIVE_CIPHER_FROM_BYTES, 1100, 70_000]) {
      const plaintext = new Uint8Array(size).fill(size % 251)
      const sealed = noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k).subarray()
      // the same bytes as either implementation would write
      expect(Buffer.from(sealed)).toEqual(Buffer.from(asCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k).subarray()))
      expect(Buffer.from(noiseCrypto.chaCha20Poly1305Decrypt(nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k).subarray(), nonce, ad, k).subarray())).toEqual(Buffer.from(plaintext))
    }
    // tampered: refused whichever implementation opens it
    for (const size of [100, 1100]) {
      const sealed = Buffer.from(noiseCrypto.chaCha20Poly1305Encrypt(new Uint8Array(size), nonce, ad, k).subarray())
      sealed[0] ^= 1
      expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, k)).toThrow()
    }
  })
})
