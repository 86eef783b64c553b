import { FRAME_ACK, FRAME_NAMES } from './frames.js'

/**
 * Frames and stream writes (`stream.send()` calls) of the speak service, both
 * directions of every session: how many writes a request/response exchange
 * costs is a property of the protocol, so it is counted, not timed.
 */
export class SpeakCounters {
  /** stream.send() calls */
  writes = 0
  /** writes that carried nothing but ACK frames */
  ackOnlyWrites = 0
  /** frames written, by name (message, request, ack, reject, reply) */
  readonly frames: Record<string, number> = { message: 0, request: 0, ack: 0, reject: 0, reply: 0 }

  /** One write of these encoded frames */
  written (frames: Uint8Array[]): void {
    this.writes++
    let acks = 0
    for (const frame of frames) {
      const type = frameType(frame)
      if (type === FRAME_ACK) acks++
      const name = FRAME_NAMES[type]
      if (name !== undefined) this.frames[name]++
    }
    if (acks === frames.length) this.ackOnlyWrites++
  }

  snapshot (): { writes: number, ackOnlyWrites: number, frames: Record<string, number> } {
    return { writes: this.writes, ackOnlyWrites: this.ackOnlyWrites, frames: { ...this.frames } }
  }
}

/** The type byte of one encoded frame: after its varint length prefix */
function frameType (frame: Uint8Array): number {
  let i = 0
  while (i < frame.byteLength && (frame[i] & 0x80) !== 0) i++
  return frame[i + 1]
}
