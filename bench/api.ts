/**
 * Local API vs SDK, measured in the same run.
 *
 * (a) Sending: `node.send()` against `POST /v1/messages` on the same node's
 *     API (with a raw keep-alive socket, node:http with a keep-alive agent,
 *     and fetch), to a molt
 *     node in another process (bench/peer.ts): throughput with the same number
 *     of sends in flight, and the latency of one send at a time; beside the
 *     HTTP floor, `GET /v1/health` with each client.
 * (b) Receiving: the time from `send()` on one node to the message reaching a
 *     consumer of the receiving node — its SDK iterator (`node.messages()`),
 *     the SSE stream, the WebSocket stream, or a client polling
 *     `GET /v1/messages?after=` — one message at a time; then how fast each
 *     path replays a backlog of stored entries.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { request as httpRequest, type ClientRequest } from 'node:http'
import WebSocket from 'ws'
import { createMoltNode, type MoltNode, type MoltNodeOptions } from '../src/index.js'
import { startApiServer, loadOrCreateApiToken, type ApiServer } from '../src/api/index.js'
import type { InboxEntry } from '../src/inbox/index.js'
import type { PeerId } from '@libp2p/interface'
import { MESSAGE_BYTES } from './protocol.js'
import { summarize, fmt } from './stats.js'

export interface ApiBenchOptions {
  /** Messages per throughput round */
  messages: number
  /** Timed sends per latency measurement (each path) */
  roundTrips: number
  rounds: number
  /** Sends in flight in the throughput runs, SDK and API alike */
  concurrency: number
  /** Entries stored before the replay measurement */
  backlog: number
  log: (line: string) => void
}

export interface Latency { p50: number, p99: number }

export type SenderName = 'sdk' | 'raw' | 'http' | 'fetch'
export const SENDERS: readonly SenderName[] = ['sdk', 'raw', 'http', 'fetch']
type ClientName = Exclude<SenderName, 'sdk'>
const CLIENTS: readonly ClientName[] = ['raw', 'http', 'fetch']

export interface ApiBenchResult {
  concurrency: number
  /**
   * `sdk`: node.send(); `raw`: POST /v1/messages as prebuilt bytes on a keep-alive socket (the server's cost alone);
   * `http`: the same with node:http and a keep-alive agent; `fetch`: with fetch (undici)
   */
  send: Record<SenderName, { throughput: number } & Latency>
  /** GET /v1/health one at a time: what HTTP itself costs each client, with next to no work on the server */
  floor: Record<ClientName, Latency>
  delivery: Record<ConsumerName, Latency & { replay: number }>
}

export type ConsumerName = 'sdk' | 'sse' | 'ws' | 'poll'
export const CONSUMERS: readonly ConsumerName[] = ['sdk', 'sse', 'ws', 'poll']

/** Largest page a poller asks for (the API's maximum) */
const POLL_PAGE = 1000

const here = dirname(fileURLToPath(import.meta.url))

const nodeOptions = (dataDir: string): MoltNodeOptions => ({
  dataDir,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  heartbeatInterval: 0,
  libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
})

/** A `stream` chunk whose serialised MoltSpeak JSON is ≈ 1 KiB (as in the speak bench) */
const message = { op: 'stream' as const, p: { action: 'chunk', stream_id: 'bench', data: 'a'.repeat(MESSAGE_BYTES - 330) } }

/** `count` sends, `concurrency` in flight; msg/s */
async function throughput (count: number, concurrency: number, send: () => Promise<unknown>): Promise<number> {
  let next = 0
  const start = performance.now()
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      await send()
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return count / ((performance.now() - start) / 1000)
}

/** `count` sends one at a time; each duration in ms */
async function latencies (count: number, send: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    await send()
    samples.push(performance.now() - start)
  }
  return samples
}


/** Receive time of each message id, as a consumer sees it */
class Arrivals {
  private readonly waiting = new Map<string, (at: number) => void>()
  /** Arrived before anyone asked: a consumer may see a message before its sender has the ack */
  private readonly early = new Map<string, number>()
  /** Keep arrival times no one waits for yet (off while replaying a backlog) */
  track = true
  /** Entries seen, and the last cursor */
  count = 0
  cursor = 0
  private target = Infinity
  private reached: () => void = () => {}

  async next (id: string): Promise<number> {
    const at = this.early.get(id)
    if (at !== undefined) {
      this.early.delete(id)
      return at
    }
    return new Promise((resolve) => { this.waiting.set(id, resolve) })
  }

  /** Resolves once an entry with cursor ≥ `cursor` arrived */
  async upTo (cursor: number): Promise<void> {
    if (this.cursor >= cursor) return
    this.target = cursor
    return new Promise((resolve) => { this.reached = resolve })
  }

  arrive (entry: InboxEntry): void {
    const at = performance.now()
    this.count++
    this.cursor = entry.cursor
    const waiter = this.waiting.get(entry.message.id)
    if (waiter != null) {
      this.waiting.delete(entry.message.id)
      waiter(at)
    } else if (this.track) {
      this.early.set(entry.message.id, at)
    }
    if (this.cursor >= this.target) {
      this.target = Infinity
      this.reached()
    }
  }
}

interface Consumer {
  arrivals: Arrivals
  close: () => void
}

/** Open one consumer of `node`'s inbox (through its API at `api`), from `after` on */
async function openConsumer (name: ConsumerName, node: MoltNode, api: ApiServer, token: string, after: number): Promise<Consumer> {
  const arrivals = new Arrivals()
  const controller = new AbortController()
  const auth = { authorization: `Bearer ${token}` }
  if (name === 'sdk') {
    ;(async () => {
      for await (const entry of node.messages({ after, signal: controller.signal })) arrivals.arrive(entry)
    })().catch(() => {})
    return { arrivals, close: () => { controller.abort() } }
  }
  if (name === 'sse') {
    let req: ClientRequest | undefined
    await new Promise<void>((resolve, reject) => {
      req = httpRequest(`${api.url}/v1/stream?after=${after}`, { headers: { ...auth, accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) { reject(new Error(`SSE: ${res.statusCode}`)); return }
        res.setEncoding('utf8')
        let buffer = ''
        res.on('data', (chunk: string) => {
          buffer += chunk
          let end: number
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const data = block.split('\n').find(line => line.startsWith('data: '))
            if (data != null) arrivals.arrive(JSON.parse(data.slice(6)))
          }
        })
        resolve()
      })
      req.on('error', reject)
      req.end()
    })
    return { arrivals, close: () => { req?.destroy() } }
  }
  if (name === 'ws') {
    const ws = new WebSocket(`${api.url.replace(/^http/, 'ws')}/v1/stream?after=${after}`, { headers: auth })
    ws.on('message', (data) => { arrivals.arrive(JSON.parse(data.toString())) })
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    return { arrivals, close: () => { ws.terminate() } }
  }
  // back-to-back polling: the best latency polling gets (a real poller adds about half its interval)
  ;(async () => {
    let cursor = after
    while (!controller.signal.aborted) {
      const res = await fetch(`${api.url}/v1/messages?after=${cursor}&limit=${POLL_PAGE}`, { headers: auth, signal: controller.signal })
      const page = await res.json() as { messages: InboxEntry[], next: number }
      for (const entry of page.messages) arrivals.arrive(entry)
      cursor = page.next
    }
  })().catch(() => {})
  return { arrivals, close: () => { controller.abort() } }
}

/** bench/peer.ts in its own process: a molt node answering `query` on 127.0.0.1 */
export async function spawnPeer (): Promise<{ address: string, stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [join(here, 'peer.js')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', (code) => { reject(new Error(`bench peer exited with ${code}`)) })
  })
  return {
    address: JSON.parse(line).address,
    stop: async () => {
      child.stdin.end()
      if (child.exitCode == null) await new Promise(resolve => child.once('exit', resolve))
    }
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** The API client process (bench/api-client.ts): one command → one answer */
function startClientProcess (): { call: (command: Record<string, unknown>) => Promise<any>, stop: () => void } {
  const child = spawn(process.execPath, [join(here, 'api-client.js')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const waiting: Array<(answer: any) => void> = []
  createInterface({ input: child.stdout }).on('line', (line) => { waiting.shift()?.(JSON.parse(line)) })
  return {
    call: async (command) => {
      const answer = await new Promise<any>((resolve) => {
        waiting.push(resolve)
        child.stdin.write(JSON.stringify(command) + '\n')
      })
      if (answer.error != null) throw new Error(answer.error)
      return answer
    },
    stop: () => { child.stdin.end() }
  }
}

async function sendBench (sender: MoltNode, api: ApiServer, token: string, peer: PeerId, options: ApiBenchOptions): Promise<Pick<ApiBenchResult, 'send' | 'floor'>> {
  // the HTTP clients run in a process of their own, like an agent in another language
  const client = startClientProcess()
  const body = JSON.stringify({ to: peer.toString(), message })
  const post = (name: ClientName): Record<string, unknown> => ({ client: name, method: 'POST', url: api.url + '/v1/messages', token, body })
  const health = (name: ClientName): Record<string, unknown> => ({ client: name, method: 'GET', url: api.url + '/v1/health', token })
  const throughputOf = async (name: SenderName, count: number): Promise<number> => name === 'sdk'
    ? throughput(count, options.concurrency, async () => sender.send(peer, message))
    : (await client.call({ cmd: 'throughput', ...post(name), count, concurrency: options.concurrency })).value
  const latenciesOf = async (name: SenderName, count: number): Promise<number[]> => name === 'sdk'
    ? latencies(count, async () => sender.send(peer, message))
    : (await client.call({ cmd: 'latencies', ...post(name), count })).samples
  try {
    options.log('  send: warming up')
    for (const name of SENDERS) {
      await throughputOf(name, 2000)
      await latenciesOf(name, 200)
    }
    const runs = Object.fromEntries(SENDERS.map(name => [name, [] as number[]])) as Record<SenderName, number[]>
    const samples = Object.fromEntries(SENDERS.map(name => [name, [] as number[]])) as Record<SenderName, number[]>
    const floor = Object.fromEntries(CLIENTS.map(name => [name, [] as number[]])) as Record<ClientName, number[]>
    const perRound = Math.ceil(options.roundTrips / options.rounds)
    for (let round = 1; round <= options.rounds; round++) {
      for (const name of SENDERS) runs[name].push(await throughputOf(name, options.messages))
      for (const name of SENDERS) samples[name].push(...await latenciesOf(name, perRound))
      for (const name of CLIENTS) floor[name].push(...(await client.call({ cmd: 'latencies', ...health(name), count: perRound })).samples)
      options.log(`  send round ${round}/${options.rounds} (${options.concurrency} in flight): ${SENDERS.map(name => `${name} ${fmt(runs[name].at(-1)!)} msg/s`).join(', ')}`)
    }
    return {
      send: Object.fromEntries(SENDERS.map(name => [name, { throughput: median(runs[name]), ...pick(summarize(samples[name])) }])) as ApiBenchResult['send'],
      floor: Object.fromEntries(CLIENTS.map(name => [name, pick(summarize(floor[name]))])) as ApiBenchResult['floor']
    }
  } finally {
    client.stop()
  }
}

async function deliveryBench (sender: MoltNode, receiver: MoltNode, api: ApiServer, token: string, options: ApiBenchOptions): Promise<ApiBenchResult['delivery']> {
  const peer = await sender.resolvePeer(receiver.getMultiaddrs()[0])
  const samples = Object.fromEntries(CONSUMERS.map(name => [name, [] as number[]])) as Record<ConsumerName, number[]>
  const perRound = Math.ceil(options.roundTrips / options.rounds)
  for (let round = 0; round <= options.rounds; round++) {
    // round 0 warms every path up and is not counted
    for (const name of CONSUMERS) {
      const consumer = await openConsumer(name, receiver, api, token, receiver.inboxCursor())
      try {
        for (let i = 0; i < (round === 0 ? 100 : perRound); i++) {
          const start = performance.now()
          const { id } = await sender.send(peer, message)
          const arrived = await consumer.arrivals.next(id)
          if (round > 0) samples[name].push(arrived - start)
        }
      } finally {
        consumer.close()
      }
    }
    if (round > 0) options.log(`  delivery round ${round}/${options.rounds}: p50 ${CONSUMERS.map(name => `${name} ${fmt(summarize(samples[name]).p50, 3)} ms`).join(', ')}`)
  }

  // replay: a backlog stored while nobody listened, read from the start by each path
  options.log(`  replay: storing ${fmt(options.backlog)} entries`)
  const from = receiver.inboxCursor()
  await throughput(options.backlog, options.concurrency, async () => sender.send(peer, message))
  const last = receiver.inboxCursor()
  const replay = {} as Record<ConsumerName, number>
  for (const name of CONSUMERS) {
    const start = performance.now()
    const consumer = await openConsumer(name, receiver, api, token, from)
    consumer.arrivals.track = false
    await consumer.arrivals.upTo(last)
    replay[name] = consumer.arrivals.count / ((performance.now() - start) / 1000)
    consumer.close()
  }
  options.log(`  replay: ${CONSUMERS.map(name => `${name} ${fmt(replay[name])} entries/s`).join(', ')}`)
  return Object.fromEntries(CONSUMERS.map(name => [name, { ...pick(summarize(samples[name])), replay: replay[name] }])) as ApiBenchResult['delivery']
}

function pick ({ p50, p99 }: Latency): Latency {
  return { p50, p99 }
}

export async function runApiBench (options: ApiBenchOptions): Promise<ApiBenchResult> {
  const peer = await spawnPeer()
  const dirs = await Promise.all([mkdtemp(join(tmpdir(), 'molt-bench-api-a-')), mkdtemp(join(tmpdir(), 'molt-bench-api-r-'))])
  const nodes: MoltNode[] = []
  const servers: ApiServer[] = []
  try {
    const sender = await createMoltNode(nodeOptions(dirs[0]))
    nodes.push(sender)
    const senderToken = await loadOrCreateApiToken(sender.dataDir)
    servers.push(await startApiServer(sender, { token: senderToken }))
    const far = await sender.resolvePeer(peer.address)
    options.log(`  (a) send: this process's node and its API → bench peer ${far.toString().slice(-8)} in another process`)
    const { send, floor } = await sendBench(sender, servers[0], senderToken, far, options)

    const receiver = await createMoltNode(nodeOptions(dirs[1]))
    nodes.push(receiver)
    const receiverToken = await loadOrCreateApiToken(receiver.dataDir)
    servers.push(await startApiServer(receiver, { token: receiverToken }))
    options.log('  (b) delivery: sender → receiver, both in this process, read by the receiver\'s SDK / SSE / WebSocket / poller')
    const delivery = await deliveryBench(sender, receiver, servers[1], receiverToken, options)
    return { concurrency: options.concurrency, send, floor, delivery }
  } finally {
    await Promise.all(servers.map(async server => server.close().catch(() => {})))
    await Promise.all(nodes.map(async node => node.stop().catch(() => {})))
    await peer.stop()
    await Promise.all(dirs.map(async dir => rm(dir, { recursive: true, force: true })))
  }
}
