import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http'
import { apiScene, type ApiScene } from '../support/api.js'
import type { MoltNode } from '../../src/index.js'
import { startApiServer, type ApiClient, type ApiServer } from '../../src/api/index.js'
import type { InboxEntry } from '../../src/inbox/index.js'

let scene: ApiScene
let alice: MoltNode
let bob: MoltNode
let token: string
let server: ApiServer
let client: ApiClient

beforeAll(async () => {
  scene = await apiScene({ introduce: true, server: { keepaliveMs: 200 } })
  ;({ alice, bob, token, server, client } = scene)
})

afterAll(async () => {
  await scene?.cleanup()
})

interface SseEvent { id?: string, event?: string, data: string }

/** An open GET /v1/stream read event by event (and comment by comment) */
class SseStream {
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  private buffer = ''
  private ended = false
  private readonly waiters = new Set<() => void>()

  constructor (readonly req: ClientRequest, readonly res: IncomingMessage) {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      this.buffer += chunk
      let end: number
      while ((end = this.buffer.indexOf('\n\n')) >= 0) {
        const block = this.buffer.slice(0, end)
        this.buffer = this.buffer.slice(end + 2)
        const event: SseEvent = { data: '' }
        let isEvent = false
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) { this.comments.push(line.slice(1).trim()); continue }
          const colon = line.indexOf(':')
          const field = line.slice(0, colon)
          const value = line.slice(colon + 1).replace(/^ /, '')
          isEvent = true
          if (field === 'id') event.id = value
          else if (field === 'event') event.event = value
          else if (field === 'data') event.data += value
        }
        if (isEvent) this.events.push(event)
      }
      this.wake()
    })
    res.on('close', () => { this.ended = true; this.wake() })
  }

  private wake (): void { for (const wake of this.waiters) wake() }

  /** Wait until `check` holds */
  async until (check: () => boolean, timeoutMs = 15_000): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (check()) { done(); resolve() } else if (this.ended) { done(); reject(new Error(`stream ended first (${this.events.length} events)`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out with ${this.events.length} events, comments ${this.comments.join(",")}, status ${this.res.statusCode}`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.waiters.delete(wake) }
      this.waiters.add(wake)
      wake()
    })
  }

  entries (): InboxEntry[] {
    return this.events.map(event => JSON.parse(event.data) as InboxEntry)
  }

  close (): void {
    this.req.destroy()
  }
}

/** GET `path` on alice's API with the token (unless `auth: false`) and extra headers; resolves once the status line arrived */
async function open (path: string, options: { auth?: boolean, headers?: Record<string, string> } = {}): Promise<SseStream> {
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers }
  if (options.auth !== false) headers.authorization = `Bearer ${token}`
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, { headers }, (res) => { resolve(new SseStream(req, res)) })
    req.on('error', reject)
    req.end()
  })
}

let sent = 0
/** bob sends `count` numbered queries to alice; returns their message ids in order */
async function sendBatch (count: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < count; i++) {
    const result = await bob.send(alice.peerId, { op: 'query', p: { domain: 'test', intent: 'count', params: { n: sent++ } } })
    ids.push(result.id)
  }
  return ids
}

describe('GET /v1/stream', () => {
  it('needs the token (401), and refuses it as a query parameter', async () => {
    const anonymous = await open('/v1/stream', { auth: false })
    expect(anonymous.res.statusCode).toBe(401)
    anonymous.close()
    const inQuery = await open(`/v1/stream?token=${token}`, { auth: false })
    expect(inQuery.res.statusCode).toBe(401)
    inQuery.close()
  })

  it('refuses a malformed cursor (400)', async () => {
    const stream = await open('/v1/stream?after=abc')
    expect(stream.res.statusCode).toBe(400)
    stream.close()
    const header = await open('/v1/stream', { headers: { 'last-event-id': '-1' } })
    expect(header.res.statusCode).toBe(400)
    header.close()
  })

  it('pushes messages in order with ids; a reconnect with Last-Event-ID loses nothing and repeats nothing', async () => {
    const expected: string[] = []
    const first = await open('/v1/stream')
    expect(first.res.statusCode).toBe(200)
    expect(first.res.headers['content-type']).toMatch(/^text\/event-stream/)

    expected.push(...await sendBatch(20))
    await first.until(() => first.events.length >= 7)
    // disconnect after k events, possibly with more on the wire
    first.close()
    const k = 7
    const received = first.entries().slice(0, k)
    const lastId = first.events[k - 1].id!
    for (const event of first.events) {
      expect(event.event).toBe('message')
      expect(event.id).toBe(String(JSON.parse(event.data).cursor))
    }

    // sent while nobody listens
    expected.push(...await sendBatch(15))

    const second = await open('/v1/stream', { headers: { 'last-event-id': lastId } })
    expect(second.res.statusCode).toBe(200)
    await second.until(() => second.events.length >= 28)
    expected.push(...await sendBatch(15))
    await second.until(() => second.events.length >= 43)
    // then a marker: the stream is in order, so anything extra or repeated comes before it (no sleep needed)
    const [marker] = await sendBatch(1)
    await second.until(() => second.entries().some(entry => entry.message.id === marker))
    const resumed = second.entries()
    expect(resumed.at(-1)?.message.id).toBe(marker)
    received.push(...resumed.slice(0, -1))
    second.close()

    expect(expected).toHaveLength(50)
    expect(received.map(entry => entry.message.id)).toEqual(expected)
    const cursors = received.map(entry => entry.cursor)
    for (let i = 1; i < cursors.length; i++) expect(cursors[i]).toBeGreaterThan(cursors[i - 1])
    expect(received.every(entry => entry.peer === bob.peerId.toString() && entry.message.op === 'query')).toBe(true)
  })

  it('starts after ?after=<cursor>, and Last-Event-ID wins over it', async () => {
    const { messages } = await client.inbox({ limit: 1000 })
    expect(messages.length).toBeGreaterThanOrEqual(50)
    const from = messages[44].cursor
    const stream = await open(`/v1/stream?after=${from}`)
    await stream.until(() => stream.events.length >= messages.length - 45)
    expect(stream.entries().map(entry => entry.cursor)).toEqual(messages.slice(45).map(entry => entry.cursor))
    stream.close()

    const both = await open('/v1/stream?after=0', { headers: { 'last-event-id': String(messages.at(-2)!.cursor) } })
    // and a marker after: whatever the stream sent before it is all it sends from that cursor
    const [marker] = await sendBatch(1)
    await both.until(() => both.entries().some(entry => entry.message.id === marker))
    expect(both.entries().map(entry => entry.message.id)).toEqual([messages.at(-1)!.message.id, marker])
    both.close()
  })

  it('without a cursor, streams only what arrives after subscribing', async () => {
    const stream = await open('/v1/stream')
    const [id, marker] = await sendBatch(2)
    await stream.until(() => stream.entries().some(entry => entry.message.id === marker))
    // nothing older came before them
    expect(stream.entries().map(entry => entry.message.id)).toEqual([id, marker])
    stream.close()
  })

  it('waits for a slow reader (backpressure) and still delivers everything in order', async () => {
    const stream = await open('/v1/stream')
    stream.res.pause()
    const filler = 'x'.repeat(16 * 1024)
    const ids: string[] = []
    for (let i = 0; i < 120; i++) {
      const result = await bob.send(alice.peerId, { op: 'query', p: { domain: 'test', intent: 'bulk', params: { n: i, filler } } })
      ids.push(result.id)
    }
    // ~2 MB queued behind a paused reader
    await new Promise(resolve => setTimeout(resolve, 200))
    stream.res.resume()
    await stream.until(() => stream.events.length >= 120)
    expect(stream.entries().map(entry => entry.message.id)).toEqual(ids)
    stream.close()
  })

  it('sends keepalive comments on an idle stream', async () => {
    const stream = await open('/v1/stream')
    await stream.until(() => stream.comments.includes('keepalive'), 5000)
    stream.close()
  })

  it('ends the stream when the server closes', async () => {
    const other = await startApiServer(alice, { token })
    const stream = await new Promise<SseStream>((resolve, reject) => {
      const req = httpRequest(`${other.url}/v1/stream`, { headers: { authorization: `Bearer ${token}` } }, (res) => { resolve(new SseStream(req, res)) })
      req.on('error', reject)
      req.end()
    })
    expect(stream.res.statusCode).toBe(200)
    const ended = new Promise(resolve => stream.res.once('close', resolve))
    await other.close()
    await ended
  })
})

describe('POST /v1/messages/ack', () => {
  it('records the highest acknowledged cursor, shown by health', async () => {
    expect((await client.health()).acked).toBe(0)
    expect(await client.ack(12)).toEqual({ acked: 12 })
    expect(await client.ack(5)).toEqual({ acked: 12 })
    expect((await client.health()).acked).toBe(12)
    await client.ack(40)
    expect((await client.health()).acked).toBe(40)
  })

  it('validates the body and needs the token', async () => {
    const post = async (body: string, auth = true): Promise<{ status: number, json: any }> => {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (auth) headers.authorization = `Bearer ${token}`
      const res = await fetch(`${server.url}/v1/messages/ack`, { method: 'POST', headers, body })
      return { status: res.status, json: await res.json() }
    }
    expect((await post('{"cursor":1}', false)).status).toBe(401)
    expect(await post('{}')).toMatchObject({ status: 400, json: { error: { code: 'E_MISSING_FIELD', field: 'cursor' } } })
    expect(await post('{"cursor":-1}')).toMatchObject({ status: 400, json: { error: { code: 'E_INVALID_PARAM', field: 'cursor' } } })
    expect(await post('{"cursor":"3"}')).toMatchObject({ status: 400, json: { error: { code: 'E_SCHEMA', field: 'cursor' } } })
    expect(await post('{"cursor":1,"x":2}')).toMatchObject({ status: 400, json: { error: { code: 'E_SCHEMA', field: 'x' } } })
    expect((await client.health()).acked).toBe(40)
  })
})
