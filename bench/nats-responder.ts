/**
 * The far end of the NATS core baseline, in its own process (as molt's bench
 * peer is): answers `bench.echo` requests with their payload, counts
 * `bench.sink` messages and says `bench.sink.done` once the expected number
 * (set by a `bench.sink.expect` request) arrived. argv[2]: nats-server port;
 * argv[3] `jetstream`: answer JetStream-stored requests instead (the durable
 * baseline, bench/nats-jetstream.ts). Ends when its stdin closes.
 */
import { connect } from 'nats'
import { JS_REQUESTS, JS_REPLY_SUBJECT } from './nats-jetstream.js'

const nc = await connect({ servers: `127.0.0.1:${process.argv[2]}` })
let stopping: () => Promise<unknown> = async () => {}

if (process.argv[3] === 'jetstream') {
  // requests read from the stream they were stored in (an ordered consumer), each answered by publishing the
  // payload to the replies' stream, stored there (its PubAck awaited) before the requester's consumer gets it
  const js = nc.jetstream()
  const requests = await (await js.consumers.get(JS_REQUESTS)).consume()
  stopping = async () => requests.close()
  void (async () => {
    for await (const request of requests) await js.publish(JS_REPLY_SUBJECT, request.data)
  })()
} else {
  nc.subscribe('bench.echo', { callback: (err, msg) => { if (err == null) msg.respond(msg.data) } })
  let expected = -1
  let count = 0
  nc.subscribe('bench.sink.expect', {
    callback: (err, msg) => {
      if (err != null) return
      expected = Number(new TextDecoder().decode(msg.data))
      count = 0
      msg.respond()
    }
  })
  nc.subscribe('bench.sink', {
    callback: () => {
      if (++count === expected) nc.publish('bench.sink.done')
    }
  })
}
await nc.flush()
process.stdout.write('ready\n')

process.stdin.resume()
process.stdin.on('end', () => {
  stopping().catch(() => {}).then(async () => nc.close()).finally(() => process.exit(0))
})
