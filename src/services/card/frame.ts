import { Uint8ArrayList } from 'uint8arraylist'
import * as varint from 'uint8-varint'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { CardTooLargeError, CardTruncatedError } from './errors.js'

/** One card frame: varint(length) ‖ UTF-8 JSON */
export function encodeFrame (json: string): Uint8Array {
  const body = Buffer.from(json, 'utf8')
  const prefix = varint.encode(body.byteLength)
  const frame = new Uint8Array(prefix.byteLength + body.byteLength)
  frame.set(prefix, 0)
  frame.set(body, prefix.byteLength)
  return frame
}

/**
 * Read exactly one length-prefixed frame from `stream`. A length over
 * `maxBytes` is refused as soon as the prefix shows it, before any body byte is
 * kept. Bytes after the frame are not read.
 *
 * @throws {CardTooLargeError} the length prefix is over `maxBytes`
 * @throws {CardTruncatedError} the stream ended before the whole frame came
 * @throws the stream's error if it is reset, or `signal.reason` on abort
 */
export async function readFrame (stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  signal.throwIfAborted()
  const maxPrefixBytes = varint.encodingLength(maxBytes)
  const buffer = new Uint8ArrayList()
  let length: number | undefined
  let prefixBytes = 0
  let resolve!: (frame: Uint8Array) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<Uint8Array>((res, rej) => { resolve = res; reject = rej })

  const truncated = (): CardTruncatedError => {
    const received = buffer.byteLength
    return new CardTruncatedError(received === 0
      ? 'the peer closed the stream without sending a card'
      : `the stream ended after ${received} bytes of a ${length === undefined ? '?' : prefixBytes + length} byte frame`, received)
  }
  // decided from the stream's state, not from events: 'end' and 'close' may
  // have fired before we listened while data was still buffered
  const checkEnd = (): void => {
    if (stream.remoteWriteStatus === 'closed' && stream.readBufferLength === 0) reject(truncated())
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    buffer.append(evt.data)
    try {
      if (length === undefined) {
        const header = readLength(buffer, maxBytes, maxPrefixBytes)
        if (header !== undefined) [length, prefixBytes] = header
      }
      if (length !== undefined && buffer.byteLength >= prefixBytes + length) {
        resolve(buffer.subarray(prefixBytes, prefixBytes + length))
        return
      }
    } catch (err) {
      reject(err)
      return
    }
    checkEnd()
  }
  const onClose = (evt: StreamCloseEvent): void => {
    if (evt.error != null) reject(evt.error)
    else checkEnd()
  }
  const onAbort = (): void => { reject(signal.reason) }

  stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', checkEnd)
  stream.addEventListener('end', checkEnd)
  stream.addEventListener('close', onClose)
  signal.addEventListener('abort', onAbort)
  // buffered data, if any, is dispatched to onMessage in a microtask
  checkEnd()
  try {
    return await promise
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('remoteCloseWrite', checkEnd)
    stream.removeEventListener('end', checkEnd)
    stream.removeEventListener('close', onClose)
    signal.removeEventListener('abort', onAbort)
  }
}

/** [length, prefix bytes], or undefined until the varint is complete */
function readLength (buffer: Uint8ArrayList, maxBytes: number, maxPrefixBytes: number): [number, number] | undefined {
  let value = 0
  let scale = 1
  for (let i = 0; i < buffer.byteLength; i++) {
    const byte = buffer.get(i)
    value += (byte & 0x7f) * scale
    // every further varint byte only adds: refuse as soon as the limit is passed
    if (value > maxBytes || i >= maxPrefixBytes) {
      throw new CardTooLargeError(`card frame is longer than the ${maxBytes} byte limit`)
    }
    if ((byte & 0x80) === 0) return [value, i + 1]
    scale *= 128
  }
  return undefined
}
