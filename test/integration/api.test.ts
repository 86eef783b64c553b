import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { eventually as waitFor } from '../support/eventually.js'
import { request as httpRequest } from 'node:http'
import { chmod, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { addressOf, type TestNetwork } from '../support/nodes.js'
import { apiScene, type ApiScene } from '../support/api.js'
import { respond, type MoltNode } from '../../src/index.js'
import {
  startApiServer, loadOrCreateApiToken, ApiClient, ApiError, type ApiServer
} from '../../src/api/index.js'
import type { InboxEntry } from '../../src/inbox/index.js'
import { PROTOCOL as CARD_PROTOCOL } from '../../src/services/card/index.js'
import { encodeFrame } from '../../src/services/card/frame.js'

let net: TestNetwork
let scene: ApiScene
let alice: MoltNode
let bob: MoltNode
let token: string
let server: ApiServer
let client: ApiClient

beforeAll(async () => {
  scene = await apiScene()
  ;({ net, alice, bob, token, server, client } = scene)
  bob.handle('query', (message) => respond({ status: 'success', data: { echo: message.p } }) as Record<string, unknown>)
})

afterAll(async () => {
  await scene?.cleanup()
})

/** fetch against alice's API; `auth: false` leaves the token out */
async function call (method: string, path: string, options: { body?: string, auth?: boolean | string } = {}): Promise<{ status: number, json: any, text: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.auth !== false) headers.authorization = `Bearer ${typeof options.auth === 'string' ? options.auth : token}`
  const res = await fetch(server.url + path, { method, headers, body: options.body })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text), text }
}

const query = (domain = 'weather'): { op: 'query', p: Record<string, unknown> } => ({ op: 'query', p: { domain, intent: 'forecast' } })

describe('api token', () => {
  it('is 32 random bytes in hex, mode 0600, stable across loads', async () => {
    expect(token).toMatch(/^[0-9a-f]{64}$/)
    const info = await stat(join(alice.dataDir, 'api-token'))
    expect(info.mode & 0o777).toBe(0o600)
    expect(await loadOrCreateApiToken(alice.dataDir)).toBe(token)
  })

  it('refuses a token file readable by others, without touching it', async () => {
    const dir = await net.dir()
    await loadOrCreateApiToken(dir)
    const path = join(dir, 'api-token')
    await chmod(path, 0o644)
    const before = await readFile(path, 'utf8')
    await expect(loadOrCreateApiToken(dir)).rejects.toMatchObject({ name: 'ApiTokenError', message: expect.stringContaining('mode 644') })
    expect(await readFile(path, 'utf8')).toBe(before)
    expect((await stat(path)).mode & 0o777).toBe(0o644)
  })
})

describe('local API', () => {
  it('listens on 127.0.0.1', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
  })

  it('refuses a non-loopback host unless allowRemote', async () => {
    await expect(startApiServer(alice, { token, host: '0.0.0.0' })).rejects.toMatchObject({ name: 'RemoteHostRefusedError' })
    await expect(startApiServer(alice, { token, host: '192.168.1.10' })).rejects.toMatchObject({ name: 'RemoteHostRefusedError' })
    const other = await startApiServer(alice, { token, host: '127.0.0.1', port: 0 })
    await other.close()
  })

  it('answers health without a token', async () => {
    const { status, json } = await call('GET', '/v1/health', { auth: false })
    expect(status).toBe(200)
    expect(json).toMatchObject({ status: 'ok', peerId: alice.peerId.toString() })
    expect(json.uptimeMs).toBeGreaterThanOrEqual(0)
  })

  it('requires the token everywhere else', async () => {
    for (const auth of [false, 'not-the-token', token.replace(/.$/, c => c === 'a' ? 'b' : 'a')]) {
      const { status, json, text } = await call('GET', '/v1/identity', { auth })
      expect(status).toBe(401)
      expect(json.error.code).toBe('E_AUTH_FAILED')
      expect(text).not.toContain(token)
    }
    const noToken = await call('POST', '/v1/messages', { auth: false, body: JSON.stringify({ to: addressOf(bob), message: query() }) })
    expect(noToken.status).toBe(401)
    const err = await new ApiClient({ url: server.url, token: 'wrong' }).identity().catch(e => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ name: 'ApiError', code: 'E_AUTH_FAILED', status: 401 })
  })

  it('describes the identity', async () => {
    const identity = await client.identity()
    expect(identity).toMatchObject({
      peerId: alice.peerId.toString(),
      did: alice.did,
      key: alice.moltKey,
      agent: { name: 'alice', org: 'acme', capabilities: [] }
    })
    expect(identity.key).toMatch(/^ed25519:/)
    expect(identity.addresses).toContain(addressOf(alice))
  })

  it('sends a message that lands in the peer\'s inbox', async () => {
    const sent = await client.send(addressOf(bob), { op: 'stream', p: { action: 'start', stream_id: 's1' } })
    expect(sent).toMatchObject({ peer: bob.peerId.toString(), delivered: true, route: 'direct' })
    expect(sent.message).toMatchObject({ id: sent.id, op: 'stream', from: { agent: 'alice', org: 'acme' } })
    const entries = await bob.inbox({ limit: 1000 })
    expect(entries.find(e => e.message.id === sent.id)).toMatchObject({ peer: alice.peerId.toString(), message: { p: { stream_id: 's1' } } })
  })

  it('sends to a bare PeerId once connected', async () => {
    // the node fills in id, ts and from: a client may not set them
    const refused = await client.send(bob.peerId.toString(), { op: 'hello', id: 'mine' } as any).catch(e => e)
    expect(refused).toMatchObject({ name: 'ApiError', status: 400, code: 'E_SCHEMA', field: 'message.id' })
    const ok = await client.send(bob.peerId.toString(), { op: 'hello' }, { sign: true })
    expect(ok.message.sig).toMatch(/^ed25519:/)
  })

  it('makes a request and returns the reply', async () => {
    const { reply } = await client.request(addressOf(bob), query(), { timeoutMs: 5000 })
    expect(reply.op).toBe('respond')
    expect(reply.from).toMatchObject({ agent: 'bob', org: 'widgets' })
    expect(reply.p).toEqual({ status: 'success', data: { echo: { domain: 'weather', intent: 'forecast' } } })
    const sent = (await bob.inbox({ limit: 1000 })).find(e => e.message.id === reply.re)
    expect(sent?.message.op).toBe('query')
  })

  it('answers 504 E_TIMEOUT when no reply comes', async () => {
    const { status, json } = await call('POST', '/v1/requests', { body: JSON.stringify({ to: addressOf(bob), message: { op: 'hello' }, timeoutMs: 200 }) })
    expect(status).toBe(504)
    expect(json.error.code).toBe('E_TIMEOUT')
  })

  it('pings', async () => {
    const { rttMs, pong } = await client.ping(addressOf(bob))
    expect(rttMs).toBeGreaterThan(0)
    expect(pong.op).toBe('pong')
  })

  it('lists connected peers', async () => {
    const { peers } = await client.peers()
    const entry = peers.find(p => p.peerId === bob.peerId.toString())
    expect(entry?.route).toBe('direct')
    expect(entry?.addresses[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
  })

  it('pages the inbox by cursor without losing or repeating a message', async () => {
    const start = await drain(0)
    const ids: string[] = []
    // send while polling: pages must neither skip nor repeat what arrives in between
    const sending = (async () => {
      for (let seq = 0; seq < 50; seq++) {
        ids.push((await bob.send(addressOf(alice), { op: 'query', p: { domain: 'paging', seq } })).id)
      }
    })()
    const seen: InboxEntry[] = []
    let after = start
    const deadline = Date.now() + 15_000
    while (seen.length < 50 && Date.now() < deadline) {
      const page = await client.inbox({ after, limit: 7 })
      expect(page.messages.length).toBeLessThanOrEqual(7)
      expect(page.next).toBe(page.messages.at(-1)?.cursor ?? after)
      seen.push(...page.messages)
      after = page.next
      if (page.messages.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
    }
    await sending
    expect(seen.map(e => e.message.id)).toEqual(ids)
    expect(seen.map(e => e.message.p.seq)).toEqual([...Array(50).keys()])
    const cursors = seen.map(e => e.cursor)
    expect(cursors).toEqual([...cursors].sort((a, b) => a - b))
    expect((await client.inbox({ after })).messages).toEqual([])
  })

  it('rejects bad inbox parameters', async () => {
    for (const search of ['limit=0', 'limit=1001', 'limit=x', 'after=-1']) {
      const { status, json } = await call('GET', `/v1/messages?${search}`)
      expect(status).toBe(400)
      expect(json.error).toMatchObject({ code: 'E_INVALID_PARAM', field: search.split('=')[0] })
    }
  })

  it('answers 400 E_PARSE to malformed JSON', async () => {
    for (const body of ['{"to":', '', 'not json']) {
      const { status, json } = await call('POST', '/v1/messages', { body })
      expect(status).toBe(400)
      expect(json.error.code).toBe('E_PARSE')
    }
  })

  it('names the missing or mistyped field', async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ message: query() }, 'E_MISSING_FIELD', 'to'],
      [{ to: 42, message: query() }, 'E_SCHEMA', 'to'],
      [{ to: 'not-a-peer-id', message: query() }, 'E_INVALID_PARAM', 'to'],
      [{ to: addressOf(bob) }, 'E_MISSING_FIELD', 'message'],
      [{ to: addressOf(bob), message: { p: {} } }, 'E_MISSING_FIELD', 'message.op'],
      [{ to: addressOf(bob), message: { op: 'shout' } }, 'E_SCHEMA', 'message.op'],
      [{ to: addressOf(bob), message: { op: 'query', p: [] } }, 'E_SCHEMA', 'message.p'],
      [{ to: addressOf(bob), message: { op: 'query', cls: 'secret' } }, 'E_SCHEMA', 'message.cls'],
      [{ to: addressOf(bob), message: query(), sign: 'yes' }, 'E_SCHEMA', 'sign'],
      [{ to: addressOf(bob), message: query(), extra: 1 }, 'E_SCHEMA', 'extra'],
      [[1, 2], 'E_SCHEMA', 'body']
    ]
    for (const [body, code, field] of cases) {
      const { status, json } = await call('POST', '/v1/messages', { body: JSON.stringify(body) })
      expect({ body, status, code: json.error.code, field: json.error.field }).toEqual({ body, status: 400, code, field })
    }
  })

  it('answers 422 with the MoltSpeak code for an invalid message', async () => {
    const { status, json } = await call('POST', '/v1/messages', { body: JSON.stringify({ to: addressOf(bob), message: { op: 'query', p: {} } }) })
    expect(status).toBe(422)
    expect(json.error).toMatchObject({ code: 'E_MISSING_FIELD', field: 'p.domain' })
  })

  it('queues an at-least-once message for a peer it cannot reach, and lists it in the outbox', async () => {
    const offline = (await net.node()).peerId.toString()
    const { status, json } = await call('POST', '/v1/messages', { body: JSON.stringify({ to: `/ip4/127.0.0.1/tcp/1/p2p/${offline}`, message: query() }) })
    expect(status).toBe(200)
    expect(json).toMatchObject({ status: 'queued', delivered: false, delivery: 'at-least-once' })
    const outbox = await call('GET', '/v1/outbox')
    expect(outbox.json.pending).toContainEqual(expect.objectContaining({ id: json.id, peer: offline, mode: 'at-least-once' }))
    expect(outbox.json.pending[0].json).toBeUndefined()
    const metrics = await (await fetch(server.url + '/metrics', { headers: { authorization: `Bearer ${token}` } })).text()
    expect(metrics).toMatch(/^molt_outbox_messages 1$/m)
    expect(metrics).toMatch(/^molt_outbox_bytes [1-9]\d*$/m)
    const bad = await call('POST', '/v1/messages', { body: JSON.stringify({ to: offline, message: query(), delivery: 'twice' }) })
    expect(bad.status).toBe(400)
    expect(bad.json.error.field).toBe('delivery')
  })

  it('answers 502 when a best-effort message cannot be delivered', async () => {
    const { status, json } = await call('POST', '/v1/messages', { body: JSON.stringify({ to: `/ip4/127.0.0.1/tcp/1/p2p/${(await net.node()).peerId.toString()}`, message: query(), delivery: 'best-effort' }) })
    expect(status).toBe(502)
    expect(json.error.code).toBe('E_INTERNAL')
    expect(json.error.message).toMatch(/unreachable/)
  })

  it('answers 413 to a body over the limit', async () => {
    const big = JSON.stringify({ to: addressOf(bob), message: { op: 'query', p: { domain: 'x', blob: 'x'.repeat(3 * 1024 * 1024) } } })
    const { status, json } = await call('POST', '/v1/messages', { body: big })
    expect(status).toBe(413)
    expect(json.error.code).toBe('E_INVALID_PARAM')
    // still serving
    expect((await call('GET', '/v1/health')).status).toBe(200)
  })

  it('answers 413 to a chunked body that grows past the limit', async () => {
    const small = await startApiServer(alice, { token, maxBodyBytes: 1024 })
    try {
      const { status, body } = await new Promise<{ status: number, body: string }>((resolve, reject) => {
        const req = httpRequest(`${small.url}/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }, (res) => {
          let text = ''
          res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body: text }) })
        })
        req.on('error', reject)
        for (let i = 0; i < 8; i++) req.write('x'.repeat(512))
        req.end()
      })
      expect(status).toBe(413)
      expect(JSON.parse(body).error.code).toBe('E_INVALID_PARAM')
    } finally {
      await small.close()
    }
  })

  it('answers 404 to unknown routes and 405 to wrong methods', async () => {
    const notFound = await call('GET', '/v1/nope')
    expect(notFound.status).toBe(404)
    expect(notFound.json.error.code).toBeDefined()
    const wrongMethod = await call('DELETE', '/v1/messages')
    expect(wrongMethod.status).toBe(405)
    const getPing = await call('GET', '/v1/ping')
    expect(getPing.status).toBe(405)
  })
})

/** (check, what, timeout) order kept for this file's call sites */
const eventually = async <T>(check: () => Promise<T | undefined>, what: string, timeout = 10_000): Promise<T> => waitFor(check, timeout, what)

describe('discovery endpoints', () => {
  let carol: MoltNode

  beforeAll(async () => {
    // carol knows alice as a bootstrap peer: she connects on her own, as `molt agent --bootstrap` does
    carol = await net.node({ agent: { name: 'carol', org: 'acme', capabilities: ['test.translate', 'test.summarize'] }, bootstrap: [addressOf(alice)] })
    await eventually(async () => alice.libp2p.services.cards.cached(carol.peerId) ?? undefined, 'alice to hold carol\'s card')
  })

  it('GET /v1/peers lists known agents with presence, keeping peerId/addresses/route', async () => {
    const { peers } = await client.peers()
    const entry = peers.find(p => p.peerId === carol.peerId.toString())
    expect(entry).toMatchObject({
      status: 'connected', route: 'direct', name: 'carol', org: 'acme', capabilities: ['test.translate', 'test.summarize']
    })
    expect(entry?.lastSeen).toBeGreaterThan(Date.now() - 60_000)
    expect(entry?.addresses).toContain(addressOf(carol))
    for (const peer of peers) {
      expect(peer.peerId).toMatch(/^12D3KooW/)
      expect(['connected', 'seen', 'stale']).toContain(peer.status)
      expect(Array.isArray(peer.addresses)).toBe(true)
    }
  })

  it('GET /v1/peers keeps an agent that disconnected, as seen, with its last-seen time', async () => {
    const dave = await net.node({ agent: { name: 'dave' } })
    await alice.ping(addressOf(dave))
    const connected = (await client.peers()).peers.find(p => p.peerId === dave.peerId.toString())
    expect(connected?.status).toBe('connected')
    await dave.stop()
    const seen = await eventually(async () => {
      const entry = (await client.peers()).peers.find(p => p.peerId === dave.peerId.toString())
      return entry?.status === 'seen' ? entry : undefined
    }, 'dave to be seen, not connected')
    expect(seen.route).toBeUndefined()
    expect(seen.lastSeen).toBeLessThanOrEqual(Date.now())
    expect(seen.name).toBe('dave')
  })

  it('GET /v1/discover finds agents by capability with their verified cards', async () => {
    const { agents } = await client.discover({ capability: 'test.translate' })
    expect(agents).toHaveLength(1)
    expect(agents[0]).toMatchObject({ peerId: carol.peerId.toString(), source: 'local', card: { name: 'carol', org: 'acme', peer_id: carol.peerId.toString() } })
    expect(agents[0].card.sig).toMatch(/^ed25519:/)
    expect((await client.discover({ capability: 'test.nobody-offers-this', limit: 5, timeoutMs: 5000 })).agents).toEqual([])
  })

  it('GET /v1/discover validates its parameters', async () => {
    const cases: Array<[string, number, string, string]> = [
      ['', 400, 'E_MISSING_FIELD', 'capability'],
      ['?limit=3', 400, 'E_MISSING_FIELD', 'capability'],
      ['?capability=', 400, 'E_INVALID_PARAM', 'capability'],
      [`?capability=${'x'.repeat(129)}`, 400, 'E_INVALID_PARAM', 'capability'],
      ['?capability=a&limit=0', 400, 'E_INVALID_PARAM', 'limit'],
      ['?capability=a&limit=101', 400, 'E_INVALID_PARAM', 'limit'],
      ['?capability=a&timeoutMs=x', 400, 'E_INVALID_PARAM', 'timeoutMs']
    ]
    for (const [search, status, code, field] of cases) {
      const { json, status: got } = await call('GET', `/v1/discover${search}`)
      expect({ search, status: got, code: json.error.code, field: json.error.field }).toEqual({ search, status, code, field })
    }
    const err = await client.discover({ capability: '' }).catch(e => e)
    expect(err).toMatchObject({ name: 'ApiError', status: 400, field: 'capability' })
  })

  it('GET /v1/card answers the own card, or a peer\'s by PeerId or multiaddr', async () => {
    const own = await client.card()
    expect(own.card).toMatchObject({ v: 1, peer_id: alice.peerId.toString(), name: 'alice', org: 'acme', key: alice.moltKey, did: alice.did })
    const byId = await client.card({ peer: carol.peerId.toString() })
    expect(byId.card).toMatchObject({ peer_id: carol.peerId.toString(), name: 'carol' })
    expect(byId.card.capabilities.map(c => c.name)).toEqual(['test.translate', 'test.summarize'])
    const byAddress = await client.card({ peer: addressOf(bob), force: true })
    expect(byAddress.card).toMatchObject({ peer_id: bob.peerId.toString(), name: 'bob', org: 'widgets' })
  })

  it('GET /v1/card validates the peer', async () => {
    for (const [search, field] of [['?peer=', 'peer'], ['?peer=not-a-peer', 'peer'], ['?peer=/ip4/nope', 'peer'], [`?peer=${bob.peerId.toString()}&force=maybe`, 'force']]) {
      const { status, json } = await call('GET', `/v1/card${search}`)
      expect({ search, status, code: json.error.code, field: json.error.field }).toEqual({ search, status: 400, code: 'E_INVALID_PARAM', field })
    }
  })

  it('GET /v1/card answers 502 when the card cannot be fetched', async () => {
    const gone = await net.node()
    const address = addressOf(gone)
    await gone.stop()
    const { status, json } = await call('GET', `/v1/card?peer=${encodeURIComponent(address)}`)
    expect(status).toBe(502)
    expect(json.error).toMatchObject({ code: 'E_INTERNAL', message: expect.stringMatching(/unreachable/) })
  })

  it('GET /v1/card answers 422 to a card that fails verification', async () => {
    const mallory = await net.node({ agent: { name: 'mallory' } })
    const forged = { ...mallory.ownCard(), name: 'not-mallory' }
    await mallory.libp2p.unhandle(CARD_PROTOCOL)
    await mallory.libp2p.handle(CARD_PROTOCOL, async (stream) => {
      stream.send(encodeFrame(JSON.stringify(forged)))
      await stream.close()
    })
    const { status, json } = await call('GET', `/v1/card?peer=${encodeURIComponent(addressOf(mallory))}&force=true`)
    expect(status).toBe(422)
    expect(json.error.code).toBe('E_SIGNATURE')
    expect(json.error.message).toMatch(/agent card is invalid: .*signature/)

    const malformed = { ...mallory.ownCard(), capabilities: 'everything' }
    await mallory.libp2p.unhandle(CARD_PROTOCOL)
    await mallory.libp2p.handle(CARD_PROTOCOL, async (stream) => {
      stream.send(encodeFrame(JSON.stringify(malformed)))
      await stream.close()
    })
    const invalid = await client.card({ peer: mallory.peerId.toString(), force: true }).catch(e => e)
    expect(invalid).toMatchObject({ name: 'ApiError', status: 422, code: 'E_SCHEMA', message: expect.stringMatching(/capabilities/) })
  })

  it('GET /v1/card answers 504 when its timeoutMs passes first', async () => {
    const silent = await net.node({ agent: { name: 'silent' } })
    await silent.libp2p.unhandle(CARD_PROTOCOL)
    await silent.libp2p.handle(CARD_PROTOCOL, async () => {})
    // the silent peer never answers: only the request's own timeoutMs can end it, with a 504
    const { status, json } = await call('GET', `/v1/card?peer=${encodeURIComponent(addressOf(silent))}&force=true&timeoutMs=300`)
    expect(status).toBe(504)
    expect(json.error.code).toBe('E_TIMEOUT')
  })
})

/** Page to the end of alice's inbox; returns the last cursor */
async function drain (after: number): Promise<number> {
  for (;;) {
    const page = await client.inbox({ after, limit: 1000 })
    if (page.messages.length === 0) return after
    after = page.next
  }
}
