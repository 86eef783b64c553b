/**
 * The local API's client for bench/api.ts, in a process of its own — as an
 * agent written in another language would be — so its HTTP work does not
 * share the node's event loop. stdin: one JSON command per line; stdout: one
 * JSON answer per command.
 *   {"cmd":"throughput"|"latencies","client":"http"|"fetch"|"raw","method","url","token","body"?,"count","concurrency"?}
 *
 * `raw` is the lightest client there is: a prebuilt HTTP/1.1 request written
 * on a keep-alive socket, the response parsed by its content-length. What
 * it measures is the server's cost, without node:http's or undici's own
 * client-side work (a client in C, Go or Rust is closer to it).
 *   → {"value": msg/s} | {"samples": [ms…]}
 */
import { createInterface } from 'node:readline'
import { Agent, request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'

interface Command {
  cmd: 'throughput' | 'latencies'
  client: 'http' | 'fetch' | 'raw'
  method: 'GET' | 'POST'
  url: string
  token: string
  body?: string
  count: number
  concurrency?: number
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 })

function caller (command: Command): () => Promise<void> {
  const { method, url, token, body } = command
  if (command.client === 'raw') return rawCaller(command)
  if (command.client === 'fetch') {
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    return async () => {
      const res = await fetch(url, { method, headers, body })
      const text = await res.text()
      if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`)
    }
  }
  const headers: Record<string, string | number> = { authorization: `Bearer ${token}` }
  if (body != null) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = Buffer.byteLength(body)
  }
  return async () => new Promise<void>((resolve, reject) => {
    const req = httpRequest(url, { method, agent, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => { res.statusCode === 200 ? resolve() : reject(new Error(`${method} ${url}: ${res.statusCode} ${text}`)) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** One keep-alive socket per caller (one request at a time on it), opened on first use */
function rawCaller ({ method, url, token, body }: Command): () => Promise<void> {
  const target = new URL(url)
  const head = [
    `${method} ${target.pathname}${target.search} HTTP/1.1`,
    `host: ${target.host}`,
    `authorization: Bearer ${token}`,
    ...(body != null ? ['content-type: application/json', `content-length: ${Buffer.byteLength(body)}`] : []),
    '', ''
  ].join('\r\n')
  const request = Buffer.from(head + (body ?? ''))
  let socket: Socket | undefined
  let buffered: Buffer = Buffer.alloc(0)
  let waiting: { resolve: () => void, reject: (err: Error) => void } | undefined
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const end = buffered.indexOf('\r\n\r\n')
    if (end < 0) return
    const headers = buffered.subarray(0, end).toString('latin1')
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? NaN)
    if (Number.isNaN(length)) { waiting?.reject(new Error(`raw client: no content-length in ${headers}`)); return }
    if (buffered.length < end + 4 + length) return
    const status = Number(headers.slice(9, 12))
    const text = buffered.subarray(end + 4, end + 4 + length).toString('utf8')
    buffered = buffered.subarray(end + 4 + length)
    const done = waiting
    waiting = undefined
    if (status === 200) done?.resolve()
    else done?.reject(new Error(`${method} ${url}: ${status} ${text}`))
  }
  const open = async (): Promise<Socket> => new Promise((resolve, reject) => {
    const s = connect(Number(target.port), target.hostname, () => { resolve(s) })
    s.setNoDelay(true)
    s.on('data', onData)
    s.on('error', (err) => { waiting?.reject(err); reject(err) })
    sockets.add(s)
  })
  return async () => {
    socket ??= await open()
    const s = socket
    return new Promise<void>((resolve, reject) => {
      waiting = { resolve, reject }
      s.write(request)
    })
  }
}

const sockets = new Set<Socket>()

async function run (command: Command): Promise<Record<string, unknown>> {
  try {
    return await measure(command)
  } finally {
    // raw sockets live for one command
    for (const socket of sockets) socket.destroy()
    sockets.clear()
  }
}

async function measure (command: Command): Promise<Record<string, unknown>> {
  // a raw socket carries one request at a time: each concurrent worker gets its own
  const call = command.client === 'raw' && command.cmd === 'throughput' ? undefined : caller(command)
  if (command.cmd === 'latencies') {
    const samples: number[] = []
    for (let i = 0; i < command.count; i++) {
      const start = performance.now()
      await (call as () => Promise<void>)()
      samples.push(performance.now() - start)
    }
    return { samples }
  }
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: command.concurrency ?? 1 }, async () => {
    const callOne = call ?? caller(command)
    while (next < command.count) {
      next++
      await callOne()
    }
  }))
  return { value: command.count / ((performance.now() - start) / 1000) }
}

let queue: Promise<void> = Promise.resolve()
createInterface({ input: process.stdin }).on('line', (line) => {
  queue = queue.then(async () => {
    const answer = await run(JSON.parse(line) as Command).catch((err: Error) => ({ error: err.message }))
    process.stdout.write(JSON.stringify(answer) + '\n')
  })
}).on('close', () => { queue.finally(() => { agent.destroy() }).catch(() => {}) })
