/**
 * The durable NATS baseline for molt's request/response (issue #19): what a
 * developer who needs molt's guarantee — a message is stored before its
 * receiver acts on it, and a reply likewise — would build with NATS
 * JetStream. The request is published to a file-store stream and reaches the
 * responder process from it (an ordered consumer: delivered after it was
 * stored); the reply is published to a second stream, its PubAck awaited by
 * the responder, and reaches the requester from that stream. One at a time,
 * official `nats` client, nats-server on 127.0.0.1.
 */
import { spawn } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { connect, StorageType, type NatsConnection } from 'nats'
import { startNatsServer } from './nats.js'
import { cpuDuring } from './cpu.js'

export const JS_REQUESTS = 'BENCH_REQUESTS'
export const JS_REQUEST_SUBJECT = 'bench.js.request'
export const JS_REPLIES = 'BENCH_REPLIES'
export const JS_REPLY_SUBJECT = 'bench.js.reply'

export interface NatsJetStreamResult {
  /** round-trip times, request published → its stored reply received (ms) */
  samples: number[]
  /** CPU ms of the requester (`self`), nats-server (`server`) and the responder over the measured requests */
  cpuMs: Record<string, number>
}

export async function runNatsJetStreamRequests (options: { roundTrips: number, size: number, warmup: number }): Promise<NatsJetStreamResult | undefined> {
  const server = await startNatsServer({ jetstream: true })
  if (server === undefined) return undefined
  let nc: NatsConnection | undefined
  const here = dirname(fileURLToPath(import.meta.url))
  let responder: ReturnType<typeof spawn> | undefined
  let responderExited: Promise<unknown> = Promise.resolve()
  let repliesConsumer: Awaited<ReturnType<Awaited<ReturnType<ReturnType<NatsConnection['jetstream']>['consumers']['get']>>['consume']>> | undefined
  try {
    nc = await connect({ servers: `127.0.0.1:${server.port}` })
    const jsm = await nc.jetstreamManager()
    await jsm.streams.add({ name: JS_REQUESTS, subjects: [JS_REQUEST_SUBJECT], storage: StorageType.File })
    await jsm.streams.add({ name: JS_REPLIES, subjects: [JS_REPLY_SUBJECT], storage: StorageType.File })
    const child = spawn(process.execPath, [join(here, 'nats-responder.js'), String(server.port), 'jetstream'], { stdio: ['pipe', 'pipe', 'inherit'] })
    responder = child
    responderExited = new Promise(resolve => child.once('exit', resolve))
    await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve)
      child.once('exit', (code) => { reject(new Error(`nats responder exited with ${code}`)) })
    })
    const js = nc.jetstream()
    repliesConsumer = await (await js.consumers.get(JS_REPLIES)).consume()
    const replies = repliesConsumer[Symbol.asyncIterator]()
    const payload = new Uint8Array(options.size).fill(0x61)
    const exchange = async (): Promise<void> => {
      const stored = js.publish(JS_REQUEST_SUBJECT, payload)
      const reply = await replies.next()
      if (reply.done === true) throw new Error('the replies consumer ended')
      await stored
    }
    for (let i = 0; i < options.warmup; i++) await exchange()
    const { result: samples, cpuMs } = await cpuDuring({ server: server.pid, responder: child.pid }, async () => {
      const samples: number[] = []
      for (let i = 0; i < options.roundTrips; i++) {
        const start = performance.now()
        await exchange()
        samples.push(performance.now() - start)
      }
      return samples
    })
    return { samples, cpuMs }
  } finally {
    await repliesConsumer?.close().catch(() => {})
    await nc?.close().catch(() => {})
    if (responder != null) {
      responder.stdin?.end()
      const child = responder
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
      await responderExited
      clearTimeout(timer)
    }
    await server.stop()
  }
}
