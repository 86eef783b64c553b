import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * libp2p's connection protector hook (between a raw connection and Noise),
 * used to hand each Noise message to the socket as one buffer. Noise gives
 * the raw connection a list per message (its 2-byte length, then the
 * ciphertext) and @libp2p/tcp writes every buffer of a list with its own
 * write(2): two syscalls and, with TCP_NODELAY, two segments per frame, the
 * first of which can wake the reader for 2 bytes it cannot use yet. A relay
 * forwards every frame twice; copying a frame (≤ 64 KiB, in practice ~1 KiB)
 * costs less than the second syscall. It changes no byte on the wire.
 */
export function coalescedWrites (): () => ConnectionProtector {
  return () => ({
    async protect (connection: MessageStream): Promise<MessageStream> {
      const send = connection.send.bind(connection)
      connection.send = (data: Uint8Array | Uint8ArrayList): boolean => {
        // subarray() of a one-buffer list is that buffer, no copy
        return send(data instanceof Uint8Array ? data : data.subarray())
      }
      return connection
    }
  })
}
