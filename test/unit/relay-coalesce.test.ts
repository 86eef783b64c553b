import { describe, it, expect } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import type { MessageStream } from '@libp2p/interface'
import { coalescedWrites } from '../../src/relay/coalesce.js'

/** What reaches the raw connection: one entry per send() */
function rawConnection (): { connection: MessageStream, sent: Array<Uint8Array | Uint8ArrayList> } {
  const sent: Array<Uint8Array | Uint8ArrayList> = []
  const connection = { send: (data: Uint8Array | Uint8ArrayList) => { sent.push(data); return true } } as unknown as MessageStream
  return { connection, sent }
}

describe('relay: one buffer per Noise frame', () => {
  it('hands a frame given as a list (length, ciphertext) to the raw connection as one buffer with the same bytes', async () => {
    const { connection, sent } = rawConnection()
    const protectedConnection = await coalescedWrites()().protect(connection)
    const frame = new Uint8ArrayList(Uint8Array.from([0x04, 0x00]), new Uint8Array(1024).fill(7))
    expect(protectedConnection.send(frame)).toBe(true)
    expect(sent).toHaveLength(1)
    // a Uint8Array, not a list: @libp2p/tcp writes it with one write(2)
    expect(sent[0]).toBeInstanceOf(Uint8Array)
    expect(sent[0]).toEqual(frame.subarray())
  })

  it('passes a single buffer through untouched (no copy)', async () => {
    const { connection, sent } = rawConnection()
    const protectedConnection = await coalescedWrites()().protect(connection)
    const buf = Uint8Array.from([1, 2, 3])
    protectedConnection.send(buf)
    protectedConnection.send(new Uint8ArrayList(buf))
    expect(sent[0]).toBe(buf)
    expect(sent[1]).toBe(buf)
  })
})
