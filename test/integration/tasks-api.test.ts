import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { apiScene, type ApiScene } from '../support/api.js'
import { eventually } from '../support/eventually.js'
import { anyJson } from '../fuzz/support.js'
import { ApiError } from '../../src/api/index.js'
import type { TaskRecord } from '../../src/index.js'

/** Statuses the task routes may answer; never a 500 */
const STATUSES = new Set([200, 400, 404, 409, 413, 422, 502, 504, 507])

describe('/v1/tasks', () => {
  let scene: ApiScene
  beforeAll(async () => { scene = await apiScene({ introduce: true }) }, 60_000)
  afterAll(async () => { await scene.cleanup() })

  it('offers through the API; the peer claims and completes; the API shows the result', async () => {
    const { client, alice, bob } = scene
    const offered = await client.tasks<TaskRecord>('POST', '', { to: [bob.peerId.toString()], task: { id: 'api-1', type: 'demo', params: { a: 1 } } })
    expect(offered).toMatchObject({ id: 'api-1', role: 'offerer', state: 'offered', offeredTo: [bob.peerId.toString()] })
    await eventually(() => bob.tasks.get('api-1'), 20_000, 'offer')
    await bob.tasks.claim('api-1')
    await bob.tasks.complete('api-1', 'done')
    const shown = await eventually(async () => {
      const t = await client.tasks<TaskRecord>('GET', '/api-1')
      return t.state === 'completed' ? t : undefined
    }, 20_000, 'completion')
    expect(shown).toMatchObject({ worker: bob.peerId.toString(), result: 'done' })
    expect((await client.tasks<{ tasks: TaskRecord[] }>('GET', '?role=offerer&state=completed')).tasks.map(t => t.id)).toContain('api-1')
    expect(alice.tasks.get('api-1')?.state).toBe('completed')
  })

  it('a claim through the API is refused with 409 and the refusal code', async () => {
    const { client, alice, bob } = scene
    await bob.tasks.offer(alice.peerId, { id: 'api-2' })
    await eventually(() => alice.tasks.get('api-2'), 20_000, 'offer')
    await bob.tasks.cancel('api-2')
    await eventually(() => alice.tasks.get('api-2')?.state === 'cancelled', 20_000, 'cancel')
    const err = await client.tasks('POST', '/api-2', { action: 'claim' }).catch(e => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(409)
    const unknown = await client.tasks('POST', '/nope', { action: 'complete' }).catch(e => e)
    expect([unknown.status, unknown.code]).toEqual([404, 'E_TASK_UNKNOWN'])
  })

  it('answers hostile bodies with a documented status and error, never a 500', async () => {
    const { server, token, bob } = scene
    const body = fc.oneof(
      anyJson,
      fc.record({ to: fc.oneof(anyJson, fc.constant(bob.peerId.toString()), fc.array(fc.constant(bob.peerId.toString()), { maxLength: 70 })), task: anyJson }, { requiredKeys: [] }),
      fc.record({ action: fc.oneof(fc.constantFrom('claim', 'progress', 'complete', 'fail', 'cancel'), anyJson), wait: anyJson, timeoutMs: anyJson, progress: anyJson, note: anyJson, result: anyJson, reason: anyJson }, { requiredKeys: [] })
    )
    const path = fc.constantFrom('/v1/tasks', '/v1/tasks/api-1', '/v1/tasks/nope', '/v1/tasks/' + 'x'.repeat(200), '/v1/tasks/%E0%A4%A')
    await fc.assert(fc.asyncProperty(path, body, fc.constantFrom('GET', 'POST'), async (p, b, method) => {
      const res = await fetch(server.url + p, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify(b) : undefined
      })
      const text = await res.text()
      expect(STATUSES.has(res.status), `${method} ${p} ${JSON.stringify(b)} → ${res.status} ${text}`).toBe(true)
      if (res.status !== 200) expect(JSON.parse(text).error.code).toMatch(/^E_/)
    }), { numRuns: 150 })
  }, 120_000)

  it('/v1/topics answers hostile bodies with a documented status and error, never a 500; join/publish/leave work', async () => {
    const { server, token, alice } = scene
    const call = async (method: string, p: string, b?: unknown): Promise<Response> => fetch(server.url + p, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: b !== undefined ? JSON.stringify(b) : undefined
    })
    const body = fc.oneof(anyJson, fc.record({ action: fc.oneof(fc.constantFrom('join', 'leave', 'publish'), anyJson), message: fc.oneof(anyJson, fc.record({ op: fc.constantFrom('query', 'task', 'bogus'), p: anyJson }, { requiredKeys: [] })) }, { requiredKeys: [] }))
    const path = fc.constantFrom('/v1/topics', '/v1/topics/crew', '/v1/topics/bad%2Fname', '/v1/topics/' + 'x'.repeat(100), '/v1/topics/%E0%A4%A')
    await fc.assert(fc.asyncProperty(path, body, fc.constantFrom('GET', 'POST'), async (p, b, method) => {
      const res = await call(method, p, method === 'POST' ? b : undefined)
      const text = await res.text()
      expect(new Set([...STATUSES, 405, 429]).has(res.status), `${method} ${p} ${JSON.stringify(b)} → ${res.status} ${text}`).toBe(true)
      if (res.status !== 200) expect(JSON.parse(text).error.code).toMatch(/^E_/)
    }), { numRuns: 150 })
    expect((await (await call('POST', '/v1/topics/crew', { action: 'join' })).json()).name).toBe('crew')
    const sent = await (await call('POST', '/v1/topics/crew', { action: 'publish', message: { op: 'query', p: { domain: 'crew' } } })).json()
    expect(sent).toMatchObject({ topic: 'crew', message: { to: { agent: 'molt/topic/crew', org: 'topic' }, from: { key: alice.moltKey } } })
    expect((await (await call('POST', '/v1/topics/crew', { action: 'leave' })).json())).toEqual({ name: 'crew', left: true })
    // the send route takes a priority band, checked
    const bad = await call('POST', '/v1/messages', { to: scene.bob.peerId.toString(), message: { op: 'register', p: {} }, priority: 'bogus' })
    expect(bad.status).toBe(400)
    expect((await bad.json()).error).toMatchObject({ code: 'E_INVALID_PARAM', field: 'priority' })
    const ok = await call('POST', '/v1/messages', { to: scene.bob.peerId.toString(), message: { op: 'register', p: {} }, priority: 'high' })
    expect((await ok.json()).status).toBe('delivered')
  }, 120_000)

  it('survives hostile task messages from a peer, then still arbitrates', async () => {
    const { alice, bob } = scene
    const payload = fc.record({
      action: fc.constantFrom('create', 'status', 'cancel', 'complete'),
      task_id: fc.constantFrom('api-1', 'hostile-1', 'h'),
      step: fc.oneof(fc.constantFrom('offer', 'claim', 'grant', 'progress', 'cancel'), anyJson),
      claim_id: anyJson,
      claimant: fc.oneof(fc.constant(alice.peerId.toString()), anyJson),
      deadline: anyJson,
      params: anyJson,
      progress: anyJson,
      note: anyJson
    }, { requiredKeys: ['action', 'task_id'] })
    await fc.assert(fc.asyncProperty(payload, async (p) => {
      // a payload the sender itself cannot sign faithfully (an integer beyond 2^53) never leaves it
      await bob.send(alice.peerId, { op: 'task', p: p as Record<string, unknown> }, { sign: true }).catch((err: Error) => {
        if (err.name !== 'CanonicalizationError') throw err
      })
    }), { numRuns: 60 })
    // the finished task stayed finished, and a fresh offer still goes through the whole arbitration
    expect(alice.tasks.get('api-1')?.state).toBe('completed')
    await alice.tasks.offer(bob.peerId, { id: 'after-hostile' })
    await eventually(() => bob.tasks.get('after-hostile'), 20_000, 'offer')
    expect((await bob.tasks.claim('after-hostile')).state).toBe('claimed')
  }, 120_000)
})
