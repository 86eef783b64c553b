import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p, Stream } from '@libp2p/interface'
/** Baseline protocols the bench peer serves beside molt, on the same libp2p node */
export const RAW_SINK_PROTOCOL = '/molt-bench/sink/1.0.0'
export const RAW_ECHO_PROTOCOL = '/molt-bench/echo/1.0.0'
/** The echo answered on the next macrotask, as an asynchronous handler answers: Yamux's window update for the request leaves first */
export const RAW_LATE_ECHO_PROTOCOL = '/molt-bench/echo-late/1.0.0'

/** Payload size of every benchmark message */
export const MESSAGE_BYTES = 1024

/**
 * A stock js-libp2p node for the raw baselines: TCP, Noise and Yamux with
 * their packages' defaults (molt's nodes gather their writes, src/transport),
 * no connection monitor (its pings are not part of what is measured, and under
 * load it cut the connection behind a raw flood).
 */
export async function rawLibp2p (listen: string[] = []): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.1'] } as any,
    connectionMonitor: { enabled: false }
  })
}

/**
 * `roundTrips` times: send 1 KiB on `stream`, wait until 1 KiB came back (a
 * raw echo); the round-trip times in ms. Closes the stream.
 */
export async function echoRoundTrips (stream: Stream, roundTrips: number): Promise<number[]> {
  const payload = new Uint8Array(MESSAGE_BYTES).fill(0x61)
  let received = 0
  let wake: () => void = () => {}
  stream.addEventListener('message', (evt) => {
    received += evt.data.byteLength
    if (received >= MESSAGE_BYTES) { received -= MESSAGE_BYTES; wake() }
  })
  const samples: number[] = []
  for (let i = 0; i < roundTrips; i++) {
    const start = performance.now()
    const back = new Promise<void>(resolve => { wake = resolve })
    stream.send(payload)
    await back
    samples.push(performance.now() - start)
  }
  await stream.close().catch(() => {})
  return samples
}
