import { Uint8ArrayList } from 'uint8arraylist'
import * as varint from 'uint8-varint'
import type { Stream } from '@libp2p/interface'
import { MailboxProtocolError } from './errors.js'
import { JsonTooDeepError, parseBoundedJson } from '../../json/index.js'

/** One mailbox frame: varint(length) ‖ UTF-8 JSON object */
export function encodeFrame (value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const prefix = varint.encode(body.byteLength)
  const frame = Buffer.allocUnsafe(prefix.byteLength + body.byteLength)
  frame.set(prefix, 0)
  frame.set(body, prefix.byteLength)
  return frame
}


/**
 * Incremental decoder of mailbox frames. A length over `maxBytes` is refused
 * as soon as its prefix is read, before any of the body is kept.
 */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList()
  private readonly maxPrefixBytes: number

  constructor (private readonly maxBytes: number) {
    this.maxPrefixBytes = varint.encodingLength(maxBytes)
  }

  get bufferedBytes (): number {
    return this.buffer.byteLength
  }

  push (data: Uint8Array | Uint8ArrayList): void {
    this.buffer.append(data)
  }

  /**
   * The next whole frame's JSON object, or undefined until one is complete
   *
   * @throws {MailboxProtocolError} oversized length, bad UTF-8/JSON, or not an object
   */
  next (): Record<string, unknown> | undefined {
    let length = 0
    let scale = 1
    let prefixBytes = 0
    for (let i = 0; ; i++) {
      if (i >= this.buffer.byteLength) return undefined
      const byte = this.buffer.get(i)
      length += (byte & 0x7f) * scale
      if (length > this.maxBytes || i >= this.maxPrefixBytes) {
        throw new MailboxProtocolError(`frame is longer than the ${this.maxBytes} byte limit`)
      }
      if ((byte & 0x80) === 0) {
        prefixBytes = i + 1
        break
      }
      scale *= 128
    }
    if (this.buffer.byteLength < prefixBytes + length) return undefined
    const body = this.buffer.subarray(prefixBytes, prefixBytes + length)
    this.buffer.consume(prefixBytes + length)
    let value: unknown
    try {
      // bounded: a megabyte of `[[[…` would hold the relay's event loop inside JSON.parse
      value = parseBoundedJson(body.subarray())
    } catch (err: any) {
      throw new MailboxProtocolError(err instanceof JsonTooDeepError ? `frame ${err.message}` : `frame is not UTF-8 JSON: ${err.message}`)
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new MailboxProtocolError('frame is not a JSON object')
    }
    return value as Record<string, unknown>
  }
}

/**
 * Write a frame, waiting for the stream to drain when its send buffer is full
 * (a fetch answer can be megabytes; never queue without bound).
 */
export async function writeFrame (stream: Stream, value: unknown, signal?: AbortSignal): Promise<void> {
  if (stream.writeStatus !== 'writable') throw new MailboxProtocolError(`stream is ${stream.writeStatus}`)
  if (!stream.send(encodeFrame(value))) await stream.onDrain({ signal })
}
