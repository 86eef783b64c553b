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
 *   message included), Noise's WebAssembly one below (`noiseCrypto`).
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
    return gathered(connection, await this.inner.secureOutbound(connection, options))
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    joinChunks(connection)
    return gathered(connection, await this.inner.secureInbound(connection, options))
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
    pending.append(data)
    if (pending.byteLength >= GATHER_MAX_BYTES) return flush()
    if (!scheduled) {
      scheduled = true
      queueMicrotask(() => { process.nextTick(flushLater) })
    }
    return !full
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
  return secured
}
