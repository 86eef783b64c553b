import * as varint from 'uint8-varint'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Options of {@link boundedLength} */
export interface BoundedLengthInit {
  /** Largest frame body accepted, in bytes */
  maxDataLength: number
  /** The error thrown for a length over `maxDataLength`, a prefix longer than that needs, or a prefix `minimal`/`nonEmpty` refuse */
  invalid: (message: string) => Error
  /**
   * Refuse a length prefix padded with extra bytes (the unsigned-varint spec
   * wants the shortest form). `LengthPrefixedDecoder` needs it: it finds the
   * body at `varint.encodingLength(length)`, which a padded prefix would
   * shift. `lpStream` reads the prefix byte by byte and does not.
   *
   * @default false
   */
  minimal?: boolean
  /**
   * Refuse a zero length. `LengthPrefixedDecoder` skips empty frames silently;
   * a protocol whose frames are never empty says so here.
   *
   * @default false
   */
  nonEmpty?: boolean
}

/**
 * A `lengthDecoder` for `lpStream` / `LengthPrefixedDecoder` (`@libp2p/utils`)
 * that refuses as soon as the prefix shows an oversized frame. The library's
 * varint decoder only returns once the varint is complete, so a peer sending
 * `0x80 0x80 0x80 …` would be waited on (and buffered) without end; here the
 * byte that passes the limit, or the one past the longest prefix the limit
 * needs, throws `invalid`. An incomplete prefix throws a RangeError, which
 * both library readers take as "wait for more bytes".
 */
export function boundedLength (init: BoundedLengthInit): (data: Uint8ArrayList | Uint8Array) => number {
  const { maxDataLength, invalid } = init
  const maxPrefixBytes = varint.encodingLength(maxDataLength)
  return (data) => {
    let value = 0
    let scale = 1
    for (let i = 0; i < data.byteLength; i++) {
      const byte = data instanceof Uint8Array ? data[i] : data.get(i)
      value += (byte & 0x7f) * scale
      // every further varint byte only adds: refuse as soon as the limit is passed
      if (value > maxDataLength || i >= maxPrefixBytes) {
        throw invalid(`frame is longer than the ${maxDataLength} byte limit`)
      }
      if ((byte & 0x80) === 0) {
        if (init.minimal === true && i + 1 !== varint.encodingLength(value)) throw invalid('frame length prefix is padded')
        if (init.nonEmpty === true && value === 0) throw invalid('frame is empty')
        return value
      }
      scale *= 128
    }
    throw new RangeError('incomplete length prefix')
  }
}

/** One frame: varint(length) ‖ body */
export function encodeLengthPrefixed (body: Uint8Array): Uint8Array {
  const prefix = varint.encode(body.byteLength)
  const frame = new Uint8Array(prefix.byteLength + body.byteLength)
  frame.set(prefix, 0)
  frame.set(body, prefix.byteLength)
  return frame
}
