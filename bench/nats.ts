/**
 * NATS baselines, with the official `nats` client (what users of NATS run):
 * Debian's nats-server on 127.0.0.1, started and stopped here.
 *   - JetStream file store, async publish with acks (the mailbox bench's baseline)
 *   - core request/reply to a responder in another process (bench/nats-responder.ts)
 *   - core publish → subscribe to a subscriber in that process
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { connect, StorageType, RetentionPolicy, DiscardPolicy, type NatsConnection } from 'nats'
import { freePort } from './ports.js'
import { cpuDuring } from './cpu.js'

export function natsServerPath (): string | undefined {
  for (const candidate of ['nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' })
      return candidate
    } catch {}
  }
  return undefined
}

export interface NatsServer {
  port: number
  pid: number | undefined
  stop: () => Promise<void>
}

/** nats-server on 127.0.0.1 (with JetStream in a temp dir when asked); undefined when it is not installed */
export async function startNatsServer (options: { jetstream?: boolean } = {}): Promise<NatsServer | undefined> {
  const binary = natsServerPath()
  if (binary === undefined) return undefined
  const dir = await mkdtemp(join(tmpdir(), 'molt-bench-nats-'))
  const port = await freePort()
  const args = ['-a', '127.0.0.1', '-p', String(port), ...(options.jetstream === true ? ['-js', '-sd', dir] : [])]
  const server: ChildProcess = spawn(binary, args, { stdio: 'ignore' })
  const exited = new Promise(resolve => server.once('exit', resolve))
  const stop = async (): Promise<void> => {
    if (server.exitCode == null) server.kill('SIGTERM')
    await exited
    await rm(dir, { recursive: true, force: true })
  }
  // ready once a client connects
  for (let i = 0; ; i++) {
    try {
      const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false })
      await nc.close()
      return { port, pid: server.pid, stop }
    } catch (err) {
      if (i >= 100 || server.exitCode != null) {
        await stop()
        throw new Error(`nats-server did not start: ${(err as Error).message}`)
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

export interface NatsResult { published: number, seconds: number, perSecond: number }

/** JetStream file-store async publish: `messages` of `size` bytes, 4,096 unacknowledged at most, each acked by a PubAck */
export async function runNatsBaseline (messages: number, size: number): Promise<NatsResult | undefined> {
  const server = await startNatsServer({ jetstream: true })
  if (server === undefined) return undefined
  let nc: NatsConnection | undefined
  try {
    nc = await connect({ servers: `127.0.0.1:${server.port}` })
    const jsm = await nc.jetstreamManager()
    await jsm.streams.add({ name: 'bench', subjects: ['bench.>'], storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.Old })
    const js = nc.jetstream()
    const payload = new Uint8Array(size).fill(0x78)
    const publishAll = async (subject: string, count: number, window: number): Promise<void> => {
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < count) {
          next++
          await js.publish(subject, payload)
        }
      }
      await Promise.all(Array.from({ length: window }, worker))
    }
    await publishAll('bench.warm', 2000, 4096)
    const started = performance.now()
    await publishAll('bench.msg', messages, 4096)
    const seconds = (performance.now() - started) / 1000
    return { published: messages, seconds, perSecond: messages / seconds }
  } finally {
    await nc?.close().catch(() => {})
    await server.stop()
  }
}

export interface NatsCoreResult {
  /** round-trip times of request/reply, one at a time (ms) */
  requestSamples: number[]
  /** CPU ms of the requester (`self`), nats-server (`server`) and the responder while the measured requests ran */
  requestCpuMs: Record<string, number>
  /** publish → subscribe, messages per second received by the subscriber */
  pubSubPerSecond: number
}

/**
 * NATS core, as an agent developer would use it instead of molt: a responder
 * process subscribed to a subject answers each request with its payload
 * (request/reply through nats-server), and the same process counts what a
 * publisher sends it (publish → subscribe, unacknowledged, at most once).
 */
export async function runNatsCore (options: { roundTrips: number, messages: number, size: number, warmup: number }): Promise<NatsCoreResult | undefined> {
  const server = await startNatsServer()
  if (server === undefined) return undefined
  const here = dirname(fileURLToPath(import.meta.url))
  const responder = spawn(process.execPath, [join(here, 'nats-responder.js'), String(server.port)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const responderExited = new Promise(resolve => responder.once('exit', resolve))
  let nc: NatsConnection | undefined
  try {
    await new Promise<string>((resolve, reject) => {
      createInterface({ input: responder.stdout }).once('line', resolve)
      responder.once('exit', (code) => { reject(new Error(`nats responder exited with ${code}`)) })
    })
    nc = await connect({ servers: `127.0.0.1:${server.port}` })
    const payload = new Uint8Array(options.size).fill(0x61)
    for (let i = 0; i < options.warmup; i++) await nc.request('bench.echo', payload, { timeout: 10_000 })
    const { result: requestSamples, cpuMs: requestCpuMs } = await cpuDuring({ server: server.pid, responder: responder.pid }, async () => {
      const samples: number[] = []
      for (let i = 0; i < options.roundTrips; i++) {
        const start = performance.now()
        await nc!.request('bench.echo', payload, { timeout: 10_000 })
        samples.push(performance.now() - start)
      }
      return samples
    })
    const publishAndWait = async (count: number): Promise<number> => {
      // the subscriber is told how many to expect (answered at once), then says `bench.sink.done` once all arrived
      const done = nc!.subscribe('bench.sink.done', { max: 1 })
      await nc!.request('bench.sink.expect', new TextEncoder().encode(String(count)), { timeout: 10_000 })
      const start = performance.now()
      for (let i = 0; i < count; i++) nc!.publish('bench.sink', payload)
      for await (const _ of done) break
      return count / ((performance.now() - start) / 1000)
    }
    await publishAndWait(options.warmup)
    const pubSubPerSecond = await publishAndWait(options.messages)
    return { requestSamples, requestCpuMs, pubSubPerSecond }
  } finally {
    await nc?.close().catch(() => {})
    responder.stdin.end()
    if (responder.exitCode == null) {
      const timer = setTimeout(() => { responder.kill('SIGKILL') }, 5000)
      await responderExited
      clearTimeout(timer)
    }
    await server.stop()
  }
}
