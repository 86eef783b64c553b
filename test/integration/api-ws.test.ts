import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { request as httpRequest } from 'node:http'
import WebSocket from 'ws'
import type { TestNetwork } from '../support/nodes.js'
import { apiScene, type ApiScene } from '../support/api.js'
import { eventually } from '../support/eventually.js'
import type { MoltNode } from '../../src/index.js'
import { startApiServer, loadOrCreateApiToken, type ApiClient, type ApiServer } from '../../src/api/index.js'
import type { InboxEntry } from '../../src/inbox/index.js'

let net: TestNetwork
let scene: ApiScene
let alice: MoltNode
let bob: MoltNode
let token: string
let server: ApiServer
let client: ApiClient

/**
 * The ping test's own server pings this often. The shared server keeps the default (15 s): a ping
 * waits behind whatever the socket already holds, and with 200 ms a client reading 500 messages on a
 * loaded machine answered too late and was dropped as gone (1006), 1 run in 2
 */
const KEEPALIVE_MS = 1000

beforeAll(async () => {
  scene = await apiScene({ introduce: true })
  ;({ net, alice, bob, token, server, client } = scene)
})

afterAll(async () => {
  await scene?.cleanup()
})

const wsUrl = (api: ApiServer, path: string): string => api.url.replace(/^http/, 'ws') + path

/** An open WebSocket on /v1/stream, collecting what it receives until `stop()` (or the socket) ends it */
class StreamClient {
  readonly entries: InboxEntry[] = []
  readonly binary: number[] = []
  pings = 0
  closeCode?: number
  closeReason?: string
  private stopped = false
  private readonly closed: Promise<void>

  constructor (readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      // after an abrupt disconnect, bytes already read are not "processed"
      if (this.stopped) return
      if (isBinary) this.binary.push(this.entries.length)
      this.entries.push(JSON.parse(data.toString()) as InboxEntry)
      this.onEntry?.(this)
    })
    ws.on('ping', () => { this.pings++ })
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        resolve()
      })
    })
  }

  /** Called for every entry processed */
  onEntry?: (self: StreamClient) => void

  /** Drop the TCP connection at once (no close frame), keeping only what was processed */
  terminate (): void {
    this.stopped = true
    this.ws.terminate()
  }

  async until (check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await eventually(() => check() || (this.closeCode !== undefined ? Promise.reject(new Error(`closed (${this.closeCode}) waiting for ${what}`)) : false), timeoutMs, `${what} (have ${this.entries.length})`, 10)
  }

  async whenClosed (): Promise<{ code?: number, reason?: string }> {
    await this.closed
    return { code: this.closeCode, reason: this.closeReason }
  }

  close (): void {
    this.stopped = true
    this.ws.close()
  }
}

interface Refusal { status: number, body: any }

/**
 * Open ws://…/v1/stream (or `path`) with the `ws` client; resolves with the
 * open stream, or with the status and JSON body the upgrade was refused with.
 */
async function open (path = '/v1/stream', options: { headers?: Record<string, string>, protocols?: string[], auth?: boolean, api?: ApiServer, autoPong?: boolean } = {}): Promise<StreamClient | Refusal> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.auth !== false) headers.authorization = `Bearer ${token}`
  const ws = new WebSocket(wsUrl(options.api ?? server, path), options.protocols ?? [], { headers, autoPong: options.autoPong ?? true })
  return new Promise((resolve, reject) => {
    // attached now so no early frame is missed
    const stream = new StreamClient(ws)
    ws.once('open', () => { resolve(stream) })
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }) })
    })
    ws.once('error', reject)
  })
}

async function openStream (path?: string, options?: Parameters<typeof open>[1]): Promise<StreamClient> {
  const result = await open(path, options)
  if (!(result instanceof StreamClient)) throw new Error(`upgrade refused: ${result.status} ${JSON.stringify(result.body)}`)
  return result
}

let sent = 0
/** bob sends `count` numbered queries to alice, up to `window` in flight; resolves with their ids */
async function sendBatch (count: number, window = 1): Promise<string[]> {
  const ids: string[] = new Array(count)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      const result = await bob.send(alice.peerId, { op: 'query', p: { domain: 'test', intent: 'count', params: { n: sent++ } } })
      ids[i] = result.id
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  return ids
}

/** Count what the server reads from alice's inbox, and how many readers are open */
function instrumentInbox (node: MoltNode): { stats: { yielded: number, active: number }, restore: () => void } {
  const original = node.messages.bind(node)
  const stats = { yielded: 0, active: 0 }
  ;(node as any).messages = async function * (options?: { after?: number, signal?: AbortSignal }) {
    stats.active++
    try {
      for await (const entry of original(options)) {
        stats.yielded++
        yield entry
      }
    } finally {
      stats.active--
    }
  }
  return { stats, restore: () => { delete (node as any).messages } }
}

describe('GET /v1/stream over WebSocket: refusals', () => {
  it('refuses a missing or wrong token (401), and a token in the query', async () => {
    expect(await open('/v1/stream', { auth: false })).toMatchObject({ status: 401, body: { error: { code: 'E_AUTH_FAILED' } } })
    expect(await open('/v1/stream', { auth: false, headers: { authorization: `Bearer ${'0'.repeat(64)}` } })).toMatchObject({ status: 401 })
    expect(await open('/v1/stream', { auth: false, protocols: ['molt.v1', `molt.token.${'f'.repeat(64)}`] })).toMatchObject({ status: 401 })
    expect(await open(`/v1/stream?token=${token}`, { auth: false })).toMatchObject({ status: 401 })
  })

  it('refuses a malformed cursor (400), another path (404) and cross-site origins (403)', async () => {
    expect(await open('/v1/stream?after=-3')).toMatchObject({ status: 400, body: { error: { code: 'E_INVALID_PARAM', field: 'after' } } })
    expect(await open('/v1/messages')).toMatchObject({ status: 404 })
    // a cross-site page is refused even with the right token
    expect(await open('/v1/stream', { headers: { origin: 'https://evil.example' } })).toMatchObject({ status: 403, body: { error: { code: 'E_AUTH_FAILED' } } })
    expect(await open('/v1/stream', { headers: { origin: 'null' } })).toMatchObject({ status: 403 })
    expect(await open('/v1/stream', { headers: { origin: 'http://127.0.0.1.evil.example' } })).toMatchObject({ status: 403 })
  })

  it('accepts loopback origins, and origins the server allows', async () => {
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
      const stream = await openStream('/v1/stream', { headers: { origin } })
      stream.close()
    }
    const allowing = await startApiServer(alice, { token, allowedOrigins: ['https://app.example'] })
    try {
      const stream = await openStream('/v1/stream', { api: allowing, headers: { origin: 'https://app.example' } })
      stream.close()
      expect(await open('/v1/stream', { api: allowing, headers: { origin: 'https://app.example:8443' } })).toMatchObject({ status: 403 })
    } finally {
      await allowing.close()
    }
  })

  it('still answers a plain GET /v1/stream with Server-Sent Events', async () => {
    const contentType = await new Promise<string | undefined>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/stream`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        resolve(res.headers['content-type'])
        req.destroy()
      })
      req.on('error', reject)
      req.end()
    })
    expect(contentType).toMatch(/^text\/event-stream/)
  })
})

describe('GET /v1/stream over WebSocket', () => {
  it('takes the token as subprotocol molt.token.<token> (browser WebSocket) and selects molt.v1', async () => {
    // Node's global WebSocket: the browser API, which cannot set headers
    const browser = new globalThis.WebSocket(wsUrl(server, '/v1/stream'), ['molt.v1', `molt.token.${token}`])
    const received: InboxEntry[] = []
    browser.addEventListener('message', (evt) => { received.push(JSON.parse(String(evt.data))) })
    await new Promise((resolve, reject) => {
      browser.addEventListener('open', resolve)
      browser.addEventListener('error', () => { reject(new Error('browser WebSocket failed')) })
    })
    expect(browser.protocol).toBe('molt.v1')
    const [id] = await sendBatch(1)
    await eventually(() => received.length >= 1, 5000, 'the message')
    expect(received.map(entry => entry.message.id)).toEqual([id])
    browser.close()

    // only the token offered: a browser needs one of its offers selected
    const tokenOnly = await openStream('/v1/stream', { auth: false, protocols: [`molt.token.${token}`] })
    expect(tokenOnly.ws.protocol).toBe(`molt.token.${token}`)
    tokenOnly.close()
  })

  it('pushes each entry live as one JSON text message, exactly as the inbox holds it', async () => {
    const stream = await openStream()
    const ids = await sendBatch(5)
    await stream.until(() => stream.entries.length >= 5, '5 entries')
    expect(stream.binary).toEqual([])
    expect(stream.entries.map(entry => entry.message.id)).toEqual(ids)
    const { messages } = await client.inbox({ after: stream.entries[0].cursor - 1, limit: 5 })
    // what SSE sends as `data`, and GET /v1/messages lists
    expect(stream.entries).toEqual(messages)
    expect(Object.keys(stream.entries[0]).sort()).toEqual(['cursor', 'message', 'peer', 'receivedAt', 'route'])
    expect(stream.entries[0]).toMatchObject({ peer: bob.peerId.toString(), route: 'direct' })
    stream.close()
  })

  it('a client that disconnects halfway through 500 messages and resumes from its last cursor loses none and gets none twice', async () => {
    const inbox = instrumentInbox(alice)
    try {
      const start = alice.inboxCursor()
      const first = await openStream(`/v1/stream?after=${start}`)
      let disconnected!: () => void
      const away = new Promise<void>((resolve) => { disconnected = resolve })
      // drop the connection abruptly on the 250th entry, with more on the wire
      first.onEntry = (self) => {
        if (self.entries.length === 250) {
          self.terminate()
          disconnected()
        }
      }
      const sending = (async () => {
        const ids = await sendBatch(300, 16)
        await away
        // stored while nobody listens
        ids.push(...await sendBatch(100, 16))
        return ids
      })()
      await away
      const processed = first.entries.slice()
      expect(processed).toHaveLength(250)
      // the server lets go of its inbox reader when the client vanishes
      await eventually(() => inbox.stats.active === 0, 5000, 'the inbox reader to end')

      const ids = await sending
      const second = await openStream(`/v1/stream?after=${processed.at(-1)!.cursor}`)
      // and live after the resume
      ids.push(...await sendBatch(100, 16))
      await second.until(() => second.entries.length >= 250, 'the other 250')
      await new Promise(resolve => setTimeout(resolve, 100))
      const received = [...processed, ...second.entries]
      second.close()

      expect(ids).toHaveLength(500)
      expect(received).toHaveLength(500)
      const receivedIds = received.map(entry => entry.message.id)
      expect(new Set(receivedIds).size).toBe(500)
      expect(new Set(receivedIds)).toEqual(new Set(ids))
      // in inbox order, which is the order GET /v1/messages gives
      const listed = [...(await client.inbox({ after: start, limit: 1000 })).messages]
      expect(received.map(entry => entry.cursor)).toEqual(listed.map(entry => entry.cursor))
    } finally {
      inbox.restore()
    }
  })

  it('serves concurrent clients, each everything in order', async () => {
    const start = alice.inboxCursor()
    const streams = await Promise.all(Array.from({ length: 4 }, async () => openStream(`/v1/stream?after=${start}`)))
    const ids = await sendBatch(60, 8)
    await Promise.all(streams.map(async stream => stream.until(() => stream.entries.length >= 60, '60 entries')))
    const order = streams[0].entries.map(entry => entry.cursor)
    for (const stream of streams) {
      expect(stream.entries.map(entry => entry.cursor)).toEqual(order)
      expect(new Set(stream.entries.map(entry => entry.message.id))).toEqual(new Set(ids))
      stream.close()
    }
  })

  it('stops reading the inbox while a client does not read (backpressure), then delivers everything', async () => {
    const inbox = instrumentInbox(alice)
    // pings stay unanswered while the client reads nothing: a server with the default interval
    const api = await startApiServer(alice, { token })
    try {
      const stream = await openStream('/v1/stream', { api })
      // the client stops reading its socket: kernel buffers, then the server's, fill up
      stream.ws.pause()
      const filler = 'x'.repeat(64 * 1024)
      const count = 320
      const ids: string[] = []
      for (let i = 0; i < count; i += 32) {
        const results = await Promise.all(Array.from({ length: 32 }, async (_, j) =>
          bob.send(alice.peerId, { op: 'query', p: { domain: 'test', intent: 'bulk', params: { n: i + j, filler } } })))
        ids.push(...results.map(result => result.id))
      }
      // 20 MiB stored; the server read only what fits its high-water mark and the kernel's buffers
      await new Promise(resolve => setTimeout(resolve, 300))
      const readWhilePaused = inbox.stats.yielded
      expect(readWhilePaused).toBeLessThan(count)
      expect(stream.entries.length).toBe(0)
      stream.ws.resume()
      await stream.until(() => stream.entries.length >= count, `${count} entries`, 20_000)
      expect(inbox.stats.yielded).toBe(count)
      expect(new Set(stream.entries.map(entry => entry.message.id))).toEqual(new Set(ids))
      stream.close()
    } finally {
      inbox.restore()
      await api.close()
    }
  })

  it('pings, and drops a client that stops answering pings', async () => {
    const api = await startApiServer(alice, { token, keepaliveMs: KEEPALIVE_MS })
    try {
      const live = await openStream('/v1/stream', { api })
      const silent = await openStream('/v1/stream', { api, autoPong: false })
      const { code } = await silent.whenClosed()
      // dropped without a close frame (the peer is presumed gone)
      expect(code).toBe(1006)
      expect(silent.pings).toBeGreaterThanOrEqual(1)
      // the client that answers gets its second ping (on its own timer: it may land just after the drop) and stays
      await live.until(() => live.pings >= 2, 'a second ping')
      expect(live.closeCode).toBeUndefined()
      live.close()
    } finally {
      await api.close()
    }
  })

  it('closes a client that sends a frame over 4 KiB (1009), and keeps serving others', async () => {
    const chatty = await openStream()
    chatty.ws.send('x'.repeat(8 * 1024))
    expect((await chatty.whenClosed()).code).toBe(1009)
    // small frames are ignored
    const other = await openStream()
    other.ws.send('{"ack":1}')
    const [id] = await sendBatch(1)
    await other.until(() => other.entries.length >= 1, 'the message')
    expect(other.entries.map(entry => entry.message.id)).toEqual([id])
    other.close()
  })

  it('closes with 1001 when the API server closes', async () => {
    const other = await startApiServer(alice, { token })
    const stream = await openStream('/v1/stream', { api: other })
    // closing the server closes its sockets itself (1001), not a client timeout
    await other.close()
    expect(await stream.whenClosed()).toEqual({ code: 1001, reason: 'server closing' })
  })

  it('closes with 1001 when the node stops', async () => {
    const carol = await net.node({ agent: { name: 'carol', org: 'acme' } })
    const carolToken = await loadOrCreateApiToken(carol.dataDir)
    const api = await startApiServer(carol, { token: carolToken })
    try {
      const ws = new WebSocket(wsUrl(api, '/v1/stream'), { headers: { authorization: `Bearer ${carolToken}` } })
      const stream = new StreamClient(ws)
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
      await carol.stop()
      expect(await stream.whenClosed()).toEqual({ code: 1001, reason: 'node stopped' })
    } finally {
      await api.close()
    }
  })
})
