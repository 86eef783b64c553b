import { Uint8ArrayList } from 'uint8arraylist'
import * as varint from 'uint8-varint'

/**
 * Wire frames of /molt/speak/1.0.0 (protocols/speak.md):
 *   varint(length) ‖ type(1) ‖ varint(seq) ‖ body
 */
export const FRAME_MESSAGE = 0x01
export const FRAME_ACK = 0x02
export const FRAME_REJECT = 0x03
/** /molt/speak/1.1.0 only: a MESSAGE whose sender waits for a reply on this stream (its ACK may be held) */
export const FRAME_REQUEST = 0x04
/** /molt/speak/1.1.0 only: receiver → sender, a reply to a REQUEST of this stream (own seq; ACK/REJECT come back the other way) */
export const FRAME_REPLY = 0x05

/** Frame names by type, for counters and logs */
export const FRAME_NAMES: Record<number, string> = { 1: 'message', 2: 'ack', 3: 'reject', 4: 'request', 5: 'reply' }

export interface Frame {
  type: number
  seq: number
  body: Uint8Array
  /** Set when the frame was over the limit: its body was discarded unread */
  oversizedBytes?: number
}

/** The byte stream cannot be parsed any further: the stream must be closed */
export class FrameError extends Error {
  static override name = 'FrameError'
  override name = 'FrameError'
  constructor (message: string, readonly reason: 'oversized' | 'malformed' | 'truncated') {
    super(message)
  }
}

const EMPTY = new Uint8Array(0)

export function encodeFrame (type: number, seq: number, body: Uint8Array = EMPTY): Uint8Array {
  const seqBytes = varint.encodingLength(seq)
  const inner = 1 + seqBytes + body.byteLength
  const lengthBytes = varint.encodingLength(inner)
  const out = new Uint8Array(lengthBytes + inner)
  varint.encode(inner, out, 0)
  out[lengthBytes] = type
  varint.encode(seq, out, lengthBytes + 1)
  out.set(body, lengthBytes + 1 + seqBytes)
  return out
}

/** Incremental decoder: push chunks, pull whole frames; never buffers more than one frame beyond limits */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList()
  /** Bytes of an oversized frame still to be thrown away as they arrive */
  private skipping = 0

  /**
   * @param maxFrameBytes - larger frames are discarded unread (reported with `oversizedBytes`)
   * @param maxSkippableBytes - larger still, and the stream is not worth keeping: FrameError
   */
  constructor (private readonly maxFrameBytes: number, private readonly maxSkippableBytes = maxFrameBytes) {}

  get bufferedBytes (): number {
    return this.buffer.byteLength
  }

  push (chunk: Uint8Array | Uint8ArrayList): void {
    if (this.skipping > 0) {
      const drop = Math.min(this.skipping, chunk.byteLength)
      this.skipping -= drop
      if (drop === chunk.byteLength) return
      chunk = chunk.subarray(drop)
    }
    this.buffer.append(chunk)
  }

  /** The next complete frame, or undefined when more bytes are needed */
  next (): Frame | undefined {
    const header = readVarint(this.buffer, 0)
    if (header == null) return undefined
    const [length, lengthBytes] = header
    if (length > this.maxSkippableBytes) {
      throw new FrameError(`frame of ${length} bytes exceeds the ${this.maxSkippableBytes} byte limit`, 'oversized')
    }
    if (length > this.maxFrameBytes) return this.skip(length, lengthBytes)
    if (length < 2) throw new FrameError(`frame of ${length} bytes is too short`, 'malformed')
    if (this.buffer.byteLength < lengthBytes + length) return undefined
    const frame = this.buffer.subarray(lengthBytes, lengthBytes + length)
    this.buffer.consume(lengthBytes + length)
    const type = frame[0]
    const seqField = readVarint(frame, 1)
    if (seqField == null) throw new FrameError('frame sequence number is truncated', 'malformed')
    return { type, seq: seqField[0], body: frame.subarray(1 + seqField[1]) }
  }

  /** Read type and seq of an oversized frame, then discard the rest without buffering it */
  private skip (length: number, lengthBytes: number): Frame | undefined {
    const headerEnd = Math.min(this.buffer.byteLength, lengthBytes + 6)
    const head = this.buffer.subarray(lengthBytes, headerEnd)
    const seqField = head.length > 1 ? readVarint(head, 1) : undefined
    if (seqField == null) return undefined // wait for type and seq
    const available = Math.min(this.buffer.byteLength - lengthBytes, length)
    this.buffer.consume(lengthBytes + available)
    this.skipping = length - available
    return { type: head[0], seq: seqField[0], body: new Uint8Array(0), oversizedBytes: length }
  }

  /** Called at end of stream: leftover bytes mean the peer stopped mid-frame */
  end (): void {
    if (this.buffer.byteLength > 0 || this.skipping > 0) {
      throw new FrameError(`stream ended inside a frame (${this.buffer.byteLength} bytes left)`, 'truncated')
    }
  }
}

/** Longest varint the protocol allows (protocols/speak.md): lengths and seqs below 2^35 */
const MAX_VARINT_BYTES = 5

/**
 * [value, byteLength], or undefined when incomplete; refuses varints longer
 * than MAX_VARINT_BYTES. The length is where the varint ends on the wire (a
 * non-minimal encoding such as 0x81 0x00 is 2 bytes), the value is decoded by
 * uint8-varint.
 */
function readVarint (buf: Uint8ArrayList | Uint8Array, offset: number): [number, number] | undefined {
  const available = Math.min(buf.length - offset, MAX_VARINT_BYTES)
  for (let i = 0; i < available; i++) {
    const byte = buf instanceof Uint8Array ? buf[offset + i] : buf.get(offset + i)
    if ((byte & 0x80) === 0) return [varint.decode(buf, offset), i + 1]
  }
  if (available === MAX_VARINT_BYTES) throw new FrameError(`varint longer than ${MAX_VARINT_BYTES} bytes`, 'malformed')
  return undefined
}
