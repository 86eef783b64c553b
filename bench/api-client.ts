/**
 * The local API's client for bench/api.ts, in a process of its own — as an
 * agent written in another language would be — so its HTTP work does not
 * share the node's event loop. stdin: one JSON command per line; stdout: one
 * JSON answer per command.
 *   {"cmd":"throughput"|"latencies","client":"http"|"fetch","method","url","token","body"?,"count","concurrency"?}
 *   → {"value": msg/s} | {"samples": [ms…]}
 */
import { createInterface } from 'node:readline'
import { Agent, request as httpRequest } from 'node:http'

interface Command {
  cmd: 'throughput' | 'latencies'
  client: 'http' | 'fetch'
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

async function run (command: Command): Promise<Record<string, unknown>> {
  const call = caller(command)
  if (command.cmd === 'latencies') {
    const samples: number[] = []
    for (let i = 0; i < command.count; i++) {
      const start = performance.now()
      await call()
      samples.push(performance.now() - start)
    }
    return { samples }
  }
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: command.concurrency ?? 1 }, async () => {
    while (next < command.count) {
      next++
      await call()
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
