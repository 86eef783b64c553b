import { lpStream } from '@libp2p/utils'
import type { Stream, StreamMessageEvent } from '@libp2p/interface'
import { boundedLength, encodeLengthPrefixed } from '../../utils/length-prefix.js'
import { MAX_STREAM_CHUNK_BYTES } from '../../constants.js'
import { CardTooLargeError, CardTruncatedError } from './errors.js'

/** One card frame: varint(length) ‖ UTF-8 JSON */
export function encodeFrame (json: string): Uint8Array {
  return encodeLengthPrefixed(Buffer.from(json, 'utf8'))
}

/**
 * Read exactly one length-prefixed frame from `stream` (`lpStream`). A length
 * over `maxBytes`, or a prefix longer than that length needs, is refused as
 * soon as the prefix shows it, before any body byte is kept. Bytes after the
 * frame are left unread on the stream.
 *
 * @throws {CardTooLargeError} the length prefix is over `maxBytes`
 * @throws {CardTruncatedError} the stream ended before the whole frame came
 * @throws the stream's error if it is reset, or `signal.reason` on abort
 */
export async function readFrame (stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  signal.throwIfAborted()
  // counted beside lpStream's own listener: how much of a truncated frame came
  let received = 0
  const count = (evt: StreamMessageEvent): void => { received += evt.data.byteLength }
  stream.addEventListener('message', count)
  const lp = lpStream(stream, {
    maxDataLength: maxBytes,
    lengthDecoder: boundedLength({ maxDataLength: maxBytes, invalid: (message) => new CardTooLargeError(`card ${message}`) }),
    // a chunk is kept whole before its prefix is looked at
    maxBufferSize: maxBytes + MAX_STREAM_CHUNK_BYTES
  })
  try {
    const frame = await lp.read({ signal })
    return frame.subarray()
  } catch (err: any) {
    if (err?.name === 'UnexpectedEOFError') {
      throw new CardTruncatedError(received === 0
        ? 'the peer closed the stream without sending a card'
        : `the stream ended after ${received} bytes of a card frame`, received)
    }
    throw err
  } finally {
    stream.removeEventListener('message', count)
    // hands unread bytes back to the stream, which refuses them once its read side closed
    if (stream.readStatus === 'readable' || stream.readStatus === 'paused') lp.unwrap()
  }
}
