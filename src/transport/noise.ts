import { noise, type ICryptoInterface, type NoiseInit } from '@chainsafe/libp2p-noise'
import { asCrypto, defaultCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import { serviceCapabilities } from '@libp2p/interface'
import type { ConnectionEncrypter, MessageStream, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { NATIVE_CIPHER_FROM_BYTES } from './constants.js'

type NoiseComponents = Parameters<ReturnType<typeof noise>>[0]

/**
 * Noise (@chainsafe/libp2p-noise, unchanged on the wire) with fewer socket
 * writes and less CPU per message:
 *
 * - **one socket write per Noise message**: Noise hands the transport its
 *   2-byte length and the ciphertext as two chunks, and @libp2p/tcp writes
 *   each with its own write(2) (a TCP segment of 2 bytes, then the rest):
 *   they are joined first. A relay forwards every frame twice;
 * - **OpenSSL's ChaCha20-Poly1305 from NATIVE_CIPHER_FROM_BYTES** (a 1 KiB
 *   message included), Noise's WebAssembly one below (`noiseCrypto`);
 * - **no exception per read**: Noise's reader (`LengthPrefixedDecoder` of
 *   @libp2p/utils with Noise's `uint16BEDecode`) learns that fewer than 2
 *   bytes are buffered — the end of every read — from a thrown RangeError,
 *   whose stack trace costs ≈ 15 µs of CPU per socket read in optimized code
 *   (perf, issue #19). `quietLengths` gives that decoder the same lengths
 *   without the throw.
 *
 * (Gathering all of a turn's writes into one Noise message was tried and
 * withdrawn: it cut the agent path's writes by half, but in the 100-node DHT
 * bench outbound Noise handshakes timed out by the dozen (46–69 per run
 * against none without it) and lookups got slower; bench/README.md.)
 */
export function moltNoise (init?: NoiseInit): (components: NoiseComponents) => ConnectionEncrypter {
  const factory = noise({ crypto: noiseCrypto, ...init })
  return (components) => new MoltNoiseEncrypter(factory(components))
}

/** Noise's default crypto, with the cipher chosen by size at NATIVE_CIPHER_FROM_BYTES (constants.ts) */
export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    return (plaintext.byteLength < NATIVE_CIPHER_FROM_BYTES ? asCrypto : nodeCrypto).chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  },
  chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
    return (ciphertext.byteLength < NATIVE_CIPHER_FROM_BYTES ? asCrypto : nodeCrypto).chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  }
}

class MoltNoiseEncrypter implements ConnectionEncrypter {
  readonly protocol: string
  readonly [Symbol.toStringTag] = 'molt/noise'
  readonly [serviceCapabilities]: string[]

  constructor (private readonly inner: ConnectionEncrypter) {
    this.protocol = inner.protocol
    this[serviceCapabilities] = (inner as { [serviceCapabilities]?: string[] })[serviceCapabilities] ?? ['@libp2p/connection-encryption']
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    joinChunks(connection)
    return quietLengths(await this.inner.secureOutbound(connection, options))
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    joinChunks(connection)
    return quietLengths(await this.inner.secureInbound(connection, options))
  }
}

interface LengthDecoder {
  lengthDecoder: (data: Uint8Array | Uint8ArrayList) => number
  encodingLength: (length: number) => number
}

/**
 * Noise's encrypted stream reads with `this.decoder`, a LengthPrefixedDecoder
 * (@libp2p/utils) that ends each read by asking `lengthDecoder` for the length
 * of what is left and stops on the RangeError it throws when that is under 2
 * bytes. Here `lengthDecoder` answers 0 instead: the decoder then needs 2
 * bytes, has fewer, and stops the same way, without an Error. Only when the
 * stream has that decoder and it behaves as described (checked on the spot);
 * otherwise nothing changes.
 */
export function quietLengths (secured: SecuredConnection): SecuredConnection {
  const decoder = (secured.connection as { decoder?: Partial<LengthDecoder> }).decoder
  if (typeof decoder?.lengthDecoder !== 'function' || typeof decoder.encodingLength !== 'function' || decoder.encodingLength(0) !== 2) return secured
  const original = decoder.lengthDecoder
  if (!throwsOnShort(original) || original(new Uint8ArrayList(Uint8Array.of(1, 2, 3))) !== 258) return secured
  decoder.lengthDecoder = (data) => data.byteLength < 2 ? 0 : original(data)
  return secured
}

function throwsOnShort (lengthDecoder: LengthDecoder['lengthDecoder']): boolean {
  try {
    lengthDecoder(new Uint8ArrayList(Uint8Array.of(1)))
    return false
  } catch (err) {
    return err instanceof RangeError
  }
}

/** The transport's send() gets one buffer per call: a Uint8ArrayList of several chunks is joined (one write(2), not one per chunk) */
function joinChunks (transport: MessageStream): void {
  const send = transport.send.bind(transport)
  transport.send = (data) => send(data instanceof Uint8Array ? data : data.subarray())
}
