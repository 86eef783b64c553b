import { noise, type ICryptoInterface, type NoiseInit } from '@chainsafe/libp2p-noise'
import { asCrypto, defaultCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import { serviceCapabilities } from '@libp2p/interface'
import type { ConnectionEncrypter, MessageStream, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { GATHER_MAX_BYTES, NATIVE_CIPHER_FROM_BYTES } from './constants.js'

type NoiseComponents = Parameters<ReturnType<typeof noise>>[0]

/**
 * Noise (@chainsafe/libp2p-noise, unchanged on the wire) with fewer socket
 * writes:
 *
 * - **one Noise message per turn**: what yamux writes during one turn of the
 *   event loop — e.g. the WINDOW_UPDATE it sends after every data frame it
 *   reads (@chainsafe/libp2p-yamux 8) and the reply written a few promise hops
 *   later — is gathered and encrypted as one Noise message at the end of the
 *   turn, where each frame was a Noise message of its own: one encryption,
 *   one socket write and, at the other end, one read and one decryption
 *   instead of several;
 * - **one socket write per Noise message**: Noise hands the transport its
 *   2-byte length and the ciphertext as two chunks, and @libp2p/tcp writes
 *   each with its own write(2) (a TCP segment of 2 bytes, then the rest):
 *   they are joined first;
 * - **OpenSSL's ChaCha20-Poly1305 from NATIVE_CIPHER_FROM_BYTES** (a 1 KiB
 *   message included), Noise's WebAssembly one below (`noiseCrypto`);
 * - **no exception per read**: Noise's reader (`LengthPrefixedDecoder` of
 *   @libp2p/utils with Noise's `uint16BEDecode`) learns that fewer than 2
 *   bytes are buffered — the end of every read — from a thrown RangeError,
 *   whose stack trace costs ≈ 15 µs of CPU per socket read in optimized code
 *   (perf, issue #19). `quietLengths` gives that decoder the same lengths
 *   without the throw.
 *
 * Nothing is held past the turn it was written in; close() sends what is
 * gathered first.
 */
export function gatheringNoise (init?: NoiseInit): (components: NoiseComponents) => ConnectionEncrypter {
  const factory = noise({ crypto: noiseCrypto, ...init })
  return (components) => new GatheringEncrypter(factory(components))
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

class GatheringEncrypter implements ConnectionEncrypter {
  readonly protocol: string
  readonly [Symbol.toStringTag] = 'molt/gathering-noise'
  readonly [serviceCapabilities]: string[]

  constructor (private readonly inner: ConnectionEncrypter) {
    this.protocol = inner.protocol
    this[serviceCapabilities] = (inner as { [serviceCapabilities]?: string[] })[serviceCapabilities] ?? ['@libp2p/connection-encryption']
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    joinChunks(connection)
    return gathered(connection, quietLengths(await this.inner.secureOutbound(connection, options)))
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    joinChunks(connection)
    return gathered(connection, quietLengths(await this.inner.secureInbound(connection, options)))
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

/**
 * Writes to the encrypted stream are gathered until the microtasks of the
 * current turn have run (a microtask that queues a nextTick: Node runs it
 * once the microtask queue is empty), then sent as one. The transport's
 * close() sends what is gathered first (libp2p closes the transport, not the
 * encrypted stream, once the muxer closed).
 */
function gathered (transport: MessageStream, secured: SecuredConnection): SecuredConnection {
  const stream = secured.connection
  const send = stream.send.bind(stream)
  let pending = new Uint8ArrayList()
  let scheduled = false
  /** The last send() to Noise returned false: the muxer is told so until 'drain' */
  let full = false

  const flush = (): boolean => {
    scheduled = false
    if (pending.byteLength === 0) return !full
    const data = pending
    pending = new Uint8ArrayList()
    full = !send(data)
    return !full
  }
  const flushLater = (): void => {
    if (!scheduled) return
    try {
      flush()
    } catch (err: any) {
      // the stream closed under the gathered bytes (send threw, as it would have at once): they cannot leave
      stream.abort(err)
    }
  }

  // registered before the muxer's own 'drain' listener: its streams resume after this one
  stream.addEventListener('drain', () => { full = false })
  stream.send = (data) => {
    // not writable: send() throws or refuses as it did, after what was gathered
    if (stream.status !== 'open') {
      flush()
      return send(data)
    }
    // what is gathered stays within one Noise message: a write that would pass it sends the rest first
    if (pending.byteLength > 0 && pending.byteLength + data.byteLength > GATHER_MAX_BYTES) flush()
    pending.append(data)
    if (pending.byteLength >= GATHER_MAX_BYTES) return flush()
    if (!scheduled) {
      scheduled = true
      queueMicrotask(() => { process.nextTick(flushLater) })
    }
    // Noise's own buffer may have filled since our last flush (it drains and refills on its own)
    return !full && !stream.writableNeedsDrain
  }
  const closeStream = stream.close.bind(stream)
  stream.close = async (options) => {
    flushLater()
    await closeStream(options)
  }
  const closeTransport = transport.close.bind(transport)
  transport.close = async (options) => {
    flushLater()
    await closeTransport(options)
  }
  // an abort (libp2p's connection abort: the muxer's GoAway and resets are written in the same turn) tries
  // to hand the socket what was gathered first, as an unwrapped Noise would have
  const abortTransport = transport.abort.bind(transport)
  transport.abort = (err) => {
    flushLater()
    abortTransport(err)
  }
  return secured
}
