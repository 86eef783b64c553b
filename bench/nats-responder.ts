/**
 * The far end of the NATS core baseline, in its own process (as molt's bench
 * peer is): answers `bench.echo` requests with their payload, counts
 * `bench.sink` messages and says `bench.sink.done` once the expected number
 * (set by a `bench.sink.expect` request) arrived. argv[2]: nats-server port.
 */
import { connect } from 'nats'

const nc = await connect({ servers: `127.0.0.1:${process.argv[2]}` })
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
await nc.flush()
process.stdout.write('ready\n')

process.stdin.resume()
process.stdin.on('end', () => {
  nc.close().finally(() => process.exit(0))
})
