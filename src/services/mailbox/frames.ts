import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { MailboxProtocolError } from './errors.js'
import { JsonTooDeepError, parseBoundedJson } from '../../json/index.js'
import * as varint from 'uint8-varint'
import { boundedLength } from '../../utils/length-prefix.js'
import { MAX_STREAM_CHUNK_BYTES } from '../../constants.js'

/** A frame whose JSON text is written already (a fetch answer splices the stored boxes into it) */
export class EncodedFrame {
  constructor (readonly json: string) {}
}

/** A request whose JSON text is written already but for its `rid` (MailboxChannel.request adds it in front) */
export class EncodedRequest {
  /** `members`: the text of the request object's members after `{"rid":N,`, with its closing brace */
  constructor (readonly t: string, readonly members: string) {}
}

/**
 * A deposit request as text. Each `box` must be base64 as Buffer#toString
 * writes it (the caller's own sealer made it): that alphabet needs no JSON
 * escaping, and JSON.stringify of a kilobyte string costs ≈ 20 µs, as much
 * as sealing it, so a frame of 1,024 boxes is written by concatenation.
 */
export function encodeDepositRequest (from: string, to: string, items: ReadonlyArray<{ id: string, exp: number, box: string }>, sig: string): EncodedRequest {
  const parts = items.map(item => `{"id":${JSON.stringify(item.id)},"exp":${JSON.stringify(item.exp)},"box":"${item.box}"}`)
  return new EncodedRequest('deposit', `"t":"deposit","from":${JSON.stringify(from)},"to":${JSON.stringify(to)},"items":[${parts.join(',')}],"sig":${JSON.stringify(sig)}}`)
}

/**
 * One mailbox frame: varint(length) ‖ UTF-8 JSON object. The text is written
 * straight after its prefix: a fetch answer is megabytes, and encoding it
 * first and copying it behind the prefix cost as much again.
 */
export function encodeFrame (value: unknown): Uint8Array {
  const json = value instanceof EncodedFrame ? value.json : JSON.stringify(value)
  const length = Buffer.byteLength(json, 'utf8')
  const prefix = varint.encodingLength(length)
  const frame = Buffer.allocUnsafe(prefix + length)
  varint.encode(length, frame)
  frame.write(json, prefix, 'utf8')
  return frame
}

/**
 * Incremental decoder of mailbox frames over `LengthPrefixedDecoder`. A
 * length over `maxBytes` is refused as soon as its prefix is read, before any
 * of the body is kept; so are a padded prefix and an empty frame (molt never
 * writes either, and the library decoder could not place the body after the
 * one nor report the other). An error is raised in frame order: the whole
 * frames before a bad one are handed out first.
 */
export class FrameDecoder {
  private readonly lp: LengthPrefixedDecoder
  private frames: Iterator<Uint8ArrayList> = [][Symbol.iterator]()
  /** Whole frames the library already took out of its buffer */
  private readonly ready: Uint8ArrayList[] = []
  private failure?: MailboxProtocolError
  private lastBytes = 0

  constructor (maxBytes: number) {
    const invalid = (message: string): MailboxProtocolError => new MailboxProtocolError(message)
    this.lp = new LengthPrefixedDecoder({
      maxDataLength: maxBytes,
      // a partial frame plus the chunk a stream hands over at once
      maxBufferSize: maxBytes + MAX_STREAM_CHUNK_BYTES,
      lengthDecoder: boundedLength({ maxDataLength: maxBytes, invalid, minimal: true, nonEmpty: true })
    })
  }

  /** Body bytes of the frame `next()` returned last (what it weighs while its request is handled) */
  get frameBytes (): number {
    return this.lastBytes
  }

  push (data: Uint8Array | Uint8ArrayList): void {
    if (this.failure !== undefined) return
    // the library appends `data` when its generator first runs: run it now,
    // so the bytes are kept even if the caller takes no frame for a while
    this.frames = this.lp.decode(data)
    this.pull()
  }

  /**
   * The next whole frame's JSON object, or undefined until one is complete
   *
   * @throws {MailboxProtocolError} oversized or malformed prefix, bad UTF-8/JSON, too deep, or not an object
   */
  next (): Record<string, unknown> | undefined {
    if (this.ready.length === 0) this.pull()
    const body = this.ready.shift()
    if (body === undefined) {
      if (this.failure !== undefined) throw this.failure
      return undefined
    }
    this.lastBytes = body.byteLength
    return parseFrame(body.subarray())
  }

  private pull (): void {
    if (this.failure !== undefined) return
    try {
      const next = this.frames.next()
      if (next.done !== true) this.ready.push(next.value)
    } catch (err: any) {
      // the library's buffer limit (InvalidParametersError) or a refused prefix
      this.failure = err instanceof MailboxProtocolError ? err : new MailboxProtocolError(`frame refused: ${err.message}`)
    }
  }
}

function parseFrame (body: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    // bounded: a megabyte of `[[[…` would hold the relay's event loop inside JSON.parse
    value = parseBoundedJson(body)
  } catch (err: any) {
    throw new MailboxProtocolError(err instanceof JsonTooDeepError ? `frame ${err.message}` : `frame is not UTF-8 JSON: ${err.message}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MailboxProtocolError('frame is not a JSON object')
  }
  return value as Record<string, unknown>
}

/**
 * Write a frame, waiting for the stream to drain when its send buffer is full
 * (a fetch answer can be megabytes; never queue without bound) until `signal`.
 */
export async function writeFrame (stream: Stream, value: unknown, signal: AbortSignal): Promise<void> {
  if (stream.writeStatus !== 'writable') throw new MailboxProtocolError(`stream is ${stream.writeStatus}`)
  if (!stream.send(encodeFrame(value))) await stream.onDrain({ signal })
}
