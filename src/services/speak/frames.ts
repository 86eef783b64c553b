import { Uint8ArrayList } from 'uint8arraylist'

/**
 * Wire frames of /molt/speak/1.0.0 (protocols/speak.md):
 *   varint(length) ‖ type(1) ‖ varint(seq) ‖ body
 */
export const FRAME_MESSAGE = 0x01
export const FRAME_ACK = 0x02
export const FRAME_REJECT = 0x03

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
  const inner = 1 + varintLength(seq) + body.byteLength
  const out = new Uint8Array(varintLength(inner) + inner)
  let offset = writeVarint(out, 0, inner)
  out[offset++] = type
  offset = writeVarint(out, offset, seq)
  out.set(body, offset)
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

function varintLength (value: number): number {
  let bytes = 1
  while (value >= 0x80) { value = Math.floor(value / 128); bytes++ }
  return bytes
}

function writeVarint (out: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) {
    out[offset++] = (value & 0x7f) | 0x80
    value = Math.floor(value / 128)
  }
  out[offset++] = value
  return offset
}

/** [value, byteLength], or undefined when incomplete; refuses varints over 2^35 */
function readVarint (buf: Uint8ArrayList | Uint8Array, offset: number): [number, number] | undefined {
  let value = 0
  let scale = 1
  for (let i = 0; i < 5; i++) {
    if (offset + i >= buf.length) return undefined
    const byte = buf instanceof Uint8Array ? buf[offset + i] : buf.get(offset + i)
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return [value, i + 1]
    scale *= 128
  }
  throw new FrameError('varint longer than 5 bytes', 'malformed')
}
