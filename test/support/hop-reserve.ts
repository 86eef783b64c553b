/**
 * A circuit relay v2 RESERVE request sent by hand over a connection already
 * open, and the relay's answer: what a hostile client does, without the stock
 * transport's own 5 s listen deadline (a loaded machine misses it, and the
 * request then never reaches the relay: the test counted neither outcome).
 */
import { lpStream } from '@libp2p/utils'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Connection } from '@libp2p/interface'

/** circuit v2 Status values (HopMessage.status), from the relay spec */
export const HOP_STATUS = { OK: 100, RESERVATION_REFUSED: 200, RESOURCE_LIMIT_EXCEEDED: 201, PERMISSION_DENIED: 202 } as const

/** HopMessage { type: RESERVE } — field 1 (varint) = 0 */
const RESERVE = Uint8Array.from([0x08, 0x00])
/** HopMessage.status is field 5 */
const STATUS_FIELD = 5

/** The status field of an encoded HopMessage (undefined when absent) */
export function hopStatus (bytes: Uint8Array): number | undefined {
  let i = 0
  const varint = (): number => {
    let value = 0
    for (let shift = 0; ; shift += 7) {
      if (i >= bytes.length || shift > 49) throw new Error('truncated or oversized varint in HopMessage')
      const b = bytes[i++]
      value += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return value
    }
  }
  let status: number | undefined
  while (i < bytes.length) {
    const tag = varint()
    const wire = tag & 7
    if (wire === 0) {
      const value = varint()
      if (tag >>> 3 === STATUS_FIELD) status = value
    } else if (wire === 2) {
      // read the length before adding: `i += varint()` would add it to i as it was before the varint
      const length = varint()
      i += length
    } else {
      throw new Error(`unexpected wire type ${wire} in HopMessage`)
    }
  }
  return status
}

/** Ask the relay at the other end of `connection` for a reservation; resolves to the status it answered */
export async function reserveOver (connection: Connection, options: { signal?: AbortSignal } = {}): Promise<number | undefined> {
  const stream = await connection.newStream(RELAY_V2_HOP_CODEC, options)
  const lp = lpStream(stream, { maxDataLength: 4096 })
  await lp.write(RESERVE, options)
  const answer = await lp.read(options)
  // the relay holds a reservation for as long as this connection stays open, not this stream
  await stream.close(options).catch(() => {})
  return hopStatus(answer.subarray())
}
