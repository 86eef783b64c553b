/**
 * Issue #15 findings 1 and 2: a message nested ~20,000 deep anywhere (an extra
 * top-level field, `ext`, `from`) is refused before JSON.parse; a throwing
 * `message` listener is logged, never fatal (embedded node and `molt agent
 * --json`); an inbox entry that cannot be serialized (one stored before the
 * limit) becomes a placeholder with its cursor in GET /v1/messages, the SSE
 * stream and the WebSocket, never a 500, an ended stream or a 1011.
 * Real nodes over TCP on 127.0.0.1, real LevelDB.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { request as httpRequest } from 'node:http'
import { multiaddr } from '@multiformats/multiaddr'
import WebSocket from 'ws'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'
import { loopbackOnly } from '../support/attack.js'
import { rawSpeak, closeRawStreams, RawSpeakStream, FRAME_REJECT } from '../support/raw-speak.js'
import { CrashDetector, deepJsonText } from '../fuzz/support.js'
import { CliSandbox } from '../support/cli.js'
import { FRAME_ACK } from '../../src/services/speak/frames.js'
import { SPEAK_PROTOCOL, type MoltNode } from '../../src/index.js'
import { startApiServer, loadOrCreateApiToken, ApiClient } from '../../src/api/index.js'
import { openDatabase } from '../../src/storage/index.js'
import { Inbox } from '../../src/inbox/index.js'
import { Output } from '../../src/cli/output.js'
import { DB_DIR } from '../../src/constants.js'
import { MAX_JSON_DEPTH } from '../../src/json/index.js'

/** The depth of the reported attack: far past what JSON.stringify can recurse */
const DEEP = 20_000

function query (to: { agent: string, org: string }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: '0.1', id: randomUUID(), ts: Date.now(), op: 'query', from: { agent: 'mallory', org: 'evil' }, to, p: { domain: 'x' }, cls: 'int', ...extra }
}

/** `message` as JSON text with `"<marker>":0` replaced by JSON nested DEEP levels */
function withDeep (message: Record<string, unknown>, marker = 'deep'): string {
  return JSON.stringify(message).replace(`"${marker}":0`, `"${marker}":${deepJsonText(DEEP)}`)
}

/** The three places the old depth check (p only) missed */
function hostileBodies (to: { agent: string, org: string }): Array<{ where: string, id: string, text: string }> {
  const top = query(to, { deep: 0 })
  const ext = query(to, { ext: { evil: { deep: 0 } } })
  const from = query(to)
  ;(from.from as Record<string, unknown>).deep = 0
  return [
    { where: 'an extra top-level field', id: top.id as string, text: withDeep(top) },
    { where: 'ext', id: ext.id as string, text: withDeep(ext) },
    { where: 'from', id: from.id as string, text: withDeep(from) }
  ]
}

const crashes = new CrashDetector()
const net = new TestNetwork()
let target: MoltNode
let attacker: MoltNode

beforeAll(async () => {
  crashes.install()
  target = await net.node({ agent: { name: 'target', org: 'acme' }, libp2p: { connectionGater: loopbackOnly } })
  attacker = await net.node({ agent: { name: 'mallory', org: 'evil' }, libp2p: { connectionGater: loopbackOnly } })
  await net.introduce()
  target.handle('query', (m) => ({ status: 'success', data: m.p }))
})

afterAll(async () => {
  await closeRawStreams()
  await net.cleanup()
  crashes.uninstall()
  expect(crashes.describe()).toBe('')
})

describe('finding 1: the depth limit covers the whole message, before JSON.parse', () => {
  it('refuses a query nested 20,000 deep in an extra field, in ext or in from with E_INVALID_PARAM; nothing is stored', async () => {
    const bodies = hostileBodies({ agent: 'target', org: 'acme' })
    const raw = await rawSpeak(attacker, target)
    bodies.forEach((body, i) => { raw.message(i + 1, body.text) })
    // the ACK through the last seq: it comes after every REJECT it covers. (Counting frames was not enough:
    // read in two batches, the three came back as REJECT 1, REJECT 2, ACK 2 — and REJECT 3 later)
    const frames = await raw.until(f => f.some(x => x.type === FRAME_ACK && x.seq >= bodies.length))
    for (const [i, body] of bodies.entries()) {
      const frame = frames.find(f => f.seq === i + 1)
      expect(frame?.type, body.where).toBe(FRAME_REJECT)
      const reply = RawSpeakStream.rejection(frame!)
      expect(reply.p.code, body.where).toBe('E_INVALID_PARAM')
      expect(reply.p.message).toContain(`deeper than ${MAX_JSON_DEPTH}`)
    }
    const ids = new Set(bodies.map(b => b.id))
    expect((await target.inbox({ limit: 1000 })).filter(e => ids.has(e.message.id))).toEqual([])
    // the stream and the node still serve
    raw.message(9, JSON.stringify(query({ agent: 'target', org: 'acme' })))
    await raw.until(f => f.some(x => x.seq === 9 && x.type === FRAME_ACK))
  })

  it('accepts a payload at the documented p limit (50), which is 52 brackets on the wire', async () => {
    let p: unknown = { leaf: true }
    for (let i = 0; i < 49; i++) p = { d: p }
    const raw = await rawSpeak(attacker, target)
    raw.message(1, JSON.stringify(query({ agent: 'target', org: 'acme' }, { p: { domain: 'x', d: p } })))
    await raw.until(f => f.some(x => x.seq === 1 && x.type === FRAME_ACK))
  })
})

describe('finding 2: a throwing listener is logged, never fatal', () => {
  it('an embedded node whose message listener throws (or rejects) keeps running and dispatching', async () => {
    const seen: string[] = []
    const thrower = (): void => { throw new Error('listener bug') }
    const rejecter = async (): Promise<void> => { throw new Error('async listener bug') }
    target.addEventListener('message', thrower)
    target.addEventListener('message', rejecter)
    target.addEventListener('message', (evt) => { seen.push(evt.detail.message.id) })
    try {
      const sent = await attacker.send(target.peerId, { op: 'query', p: { domain: 'listener' } })
      await eventually(() => seen.includes(sent.id), 10_000, 'the later listener to see the message')
      // one more round trip: the process survived the first dispatch
      const reply = await attacker.request(target.peerId, { op: 'query', p: { domain: 'after' } })
      expect(reply.p.status).toBe('success')
    } finally {
      target.removeEventListener('message', thrower)
      target.removeEventListener('message', rejecter)
    }
    expect(crashes.describe()).toBe('')
  })

  it('removeEventListener still removes a listener (the wrapper is found again)', async () => {
    let calls = 0
    const listener = (): void => { calls++ }
    target.addEventListener('message', listener)
    target.removeEventListener('message', listener)
    await attacker.request(target.peerId, { op: 'query', p: { domain: 'removed' } })
    expect(calls).toBe(0)
  })

  it('molt agent --json prints an unserializable message as a placeholder with its cursor instead of throwing', () => {
    const stdout = new PassThrough()
    let text = ''
    stdout.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
    const out = new Output(true, stdout, new PassThrough())
    const message = JSON.parse(withDeep(query({ agent: 'target', org: 'acme' }, { deep: 0 })))
    out.message({ cursor: 7, receivedAt: 1, peer: 'peer', route: 'direct', message })
    const line = JSON.parse(text.trim())
    expect(line).toMatchObject({ event: 'message', cursor: 7, id: message.id, error: { code: 'E_INTERNAL' } })
  })

  it('a real molt agent --json survives the reported attack and keeps printing messages', async () => {
    const cli = new CliSandbox()
    try {
      const agent = await cli.agent(await cli.dir())
      const address = agent.listening.addresses.find(a => a.includes('/tcp/') && !a.includes('/ws'))!
      const stream = await attacker.libp2p.dialProtocol(multiaddr(address), SPEAK_PROTOCOL)
      const raw = new RawSpeakStream(stream)
      const [body] = hostileBodies({ agent: 'any', org: 'any' })
      raw.message(1, body.text)
      await raw.until(f => f.some(x => x.seq === 1))
      const after = query({ agent: 'any', org: 'any' })
      raw.message(2, JSON.stringify(after))
      await raw.until(f => f.some(x => x.seq === 2 && x.type === FRAME_ACK))
      await agent.waitForJson(v => v.event === 'message' && v.message?.id === after.id)
      expect(agent.child.exitCode).toBeNull()
      expect(agent.lines.some(l => l.includes(body.id))).toBe(false)
      await stream.close().catch(() => {})
      await agent.stop()
    } finally {
      await cli.cleanup()
    }
  }, 90_000)
})

describe('finding 2: an entry that cannot be serialized does not poison the inbox', () => {
  let victim: MoltNode
  let dataDir: string
  let token: string
  let server: Awaited<ReturnType<typeof startApiServer>>
  let poisonedId: string
  let goodId: string

  beforeAll(async () => {
    // a node, stopped; its inbox gets an over-deep entry written straight into LevelDB (what a node
    // before the fix stored) followed by a normal one; then it starts again
    dataDir = await net.dir()
    const first = await net.node({ dataDir, agent: { name: 'victim', org: 'acme' } })
    await first.stop()
    const db = await openDatabase(join(dataDir, DB_DIR))
    const inbox = new Inbox(db, 1000)
    await inbox.open()
    const poisoned = query({ agent: 'victim', org: 'acme' }, { deep: 0 })
    const good = query({ agent: 'victim', org: 'acme' })
    poisonedId = poisoned.id as string
    goodId = good.id as string
    await inbox.append([{ json: withDeep(poisoned), peer: attacker.peerId.toString(), route: 'direct', receivedAt: Date.now() }]).stored
    await inbox.append([{ json: JSON.stringify(good), peer: attacker.peerId.toString(), route: 'direct', receivedAt: Date.now() }]).stored
    await db.close()
    victim = await net.node({ dataDir, agent: { name: 'victim', org: 'acme' } })
    token = await loadOrCreateApiToken(dataDir)
    server = await startApiServer(victim, { token })
  })

  afterAll(async () => {
    await server?.close()
  })

  it('GET /v1/messages answers 200 with a placeholder carrying the cursor, and the entries around it intact', async () => {
    const page = await new ApiClient({ url: server.url, token }).inbox({ after: 0 })
    expect(page.messages).toHaveLength(2)
    expect(page.messages[0]).toMatchObject({ cursor: 1, id: poisonedId, error: { code: 'E_INTERNAL' } })
    expect(page.messages[0]).not.toHaveProperty('message')
    expect(page.messages[1]).toMatchObject({ cursor: 2, message: { id: goodId } })
    expect(page.next).toBe(2)
  })

  it('the SSE stream sends the placeholder and goes on', async () => {
    const events = await new Promise<string[]>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/stream?after=0`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
          const blocks = text.split('\n\n').filter(b => b.includes('event: message'))
          if (blocks.length >= 2) {
            req.destroy()
            resolve(blocks)
          }
        })
        res.on('end', () => { reject(new Error(`stream ended early: ${text.slice(0, 200)}`)) })
      })
      req.on('error', reject)
      req.end()
    })
    const data = events.map(b => JSON.parse(b.split('\n').find(l => l.startsWith('data: '))!.slice(6)))
    expect(data[0]).toMatchObject({ cursor: 1, id: poisonedId, error: { code: 'E_INTERNAL' } })
    expect(data[1]).toMatchObject({ cursor: 2, message: { id: goodId } })
  })

  it('the WebSocket sends the placeholder and stays open', async () => {
    const ws = new WebSocket(`${server.url.replace('http:', 'ws:')}/v1/stream?after=0`, { headers: { authorization: `Bearer ${token}` } })
    const received: any[] = []
    let closed: number | undefined
    ws.on('message', (data) => { received.push(JSON.parse(String(data))) })
    ws.on('close', (code) => { closed = code })
    try {
      await eventually(() => received.length >= 2 || closed !== undefined, 10_000, 'two entries')
      expect(closed).toBeUndefined()
      expect(received[0]).toMatchObject({ cursor: 1, id: poisonedId, error: { code: 'E_INTERNAL' } })
      expect(received[1]).toMatchObject({ cursor: 2, message: { id: goodId } })
    } finally {
      ws.terminate()
    }
  })
})
