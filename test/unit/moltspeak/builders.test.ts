import { describe, it, expect } from 'vitest'
import {
  canonicalize, consent, createMessage, errorPayload, hello, MAX_MESSAGE_BYTES, MoltSpeakError, newMessageId, ping,
  pong, query, replyTo, respond, signMessage, stream, task, tool, UUID_PATTERN, validateMessage, verifyMessage,
  type AgentRef, type MoltMessage, type Op
} from '../../../src/moltspeak/index.js'
import { MOLT_KEY, privateKey } from './fixtures.js'

const alice: AgentRef = { agent: 'alice', org: 'acme', key: MOLT_KEY, enc_key: 'x25519:' + Buffer.alloc(32, 2).toString('base64') }
const bob: AgentRef = { agent: 'bob', org: 'widgets' }

describe('createMessage', () => {
  it('fills defaults and produces a schema-valid message', () => {
    const before = Date.now()
    const msg = createMessage({ op: 'query', from: alice, to: bob, p: query({ domain: 'weather' }) })
    expect(msg).toMatchObject({ v: '0.1', op: 'query', cls: 'int', p: { domain: 'weather' } })
    expect(msg.id).toMatch(UUID_PATTERN)
    expect(msg.ts).toBeGreaterThanOrEqual(before)
    expect(Object.keys(msg).sort()).toEqual(['cls', 'from', 'id', 'op', 'p', 'to', 'ts', 'v'])
    expect(validateMessage(msg)).toBe(msg)
  })

  it('defaults p to {} and keeps given id, ts and optionals', () => {
    const msg = createMessage({
      op: 'hello', from: alice, to: bob, id: '550e8400-e29b-41d4-a716-446655440000', ts: 5,
      cls: 'pub', exp: 10, cap: ['core'], ext: { 'acme.x': { y: 1 } }, re: undefined
    })
    expect(msg.p).toEqual({})
    expect(msg).toMatchObject({ id: '550e8400-e29b-41d4-a716-446655440000', ts: 5, cls: 'pub', exp: 10, cap: ['core'] })
    expect('re' in msg).toBe(false)
    expect(validateMessage(msg)).toBe(msg)
  })

  it('gives unique lower-case UUIDs', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newMessageId()))
    expect(ids.size).toBe(100)
    for (const id of ids) expect(id).toMatch(UUID_PATTERN)
  })

  it('round-trips through JSON with the same canonical form and a valid signature', () => {
    const msg = signMessage(createMessage({ op: 'tool', from: alice, to: bob, p: tool({ action: 'invoke', tool: 'x', input: { q: 'é' } }) }), privateKey)
    const wire: MoltMessage = JSON.parse(JSON.stringify(msg))
    expect(canonicalize(wire)).toBe(canonicalize(msg))
    expect(verifyMessage(wire)).toBe(true)
  })
})

describe('payload builders', () => {
  const request = createMessage({ op: 'query', from: alice, to: bob, p: query({ domain: 'weather' }) })

  it.each<[Op, Record<string, unknown>, Partial<MoltMessage>?]>([
    ['hello', hello({ capabilities: ['core'] })],
    ['verify', { challenge: 'abc', timestamp: 1 }],
    ['query', query({ domain: 'weather', intent: 'forecast', params: { location: 'Tokyo' }, response_format: { type: 'structured' } })],
    ['respond', respond({ data: { temp: 20 } }), { re: request.id }],
    ['task', task({ action: 'create', task_id: 't-1', priority: 'high', deadline: 1703283600000 })],
    ['stream', stream({ action: 'chunk', stream_id: 's-1', seq: 2, data: 'xyz' })],
    ['tool', tool({ action: 'list' })],
    ['consent', consent({ action: 'request', data_types: ['email'], purpose: 'support', duration: 'session' })],
    ['error', errorPayload('E_TASK_FAILED', 'boom'), { re: request.id }],
    ['register', { action: 'create', profile: { name: 'x' }, ttl: 86_400_000 }],
    ['discover', { capability: 'translate.text', limit: 5 }],
    ['ping', ping()],
    ['pong', pong({ nonce: 'n', load: 0.5 }), { re: request.id }]
  ])('%s payload validates', (op, p, extra) => {
    const msg = { ...createMessage({ op, from: alice, to: bob, p }), ...extra }
    expect(() => validateMessage(msg)).not.toThrow()
  })

  it('leaves out undefined fields and fills defaults', () => {
    expect(query({ domain: 'd', intent: undefined })).toEqual({ domain: 'd' })
    expect('intent' in query({ domain: 'd', intent: undefined })).toBe(false)
    expect(respond()).toEqual({ status: 'success' })
    expect(respond({ status: 'partial', data: [1] })).toEqual({ status: 'partial', data: [1] })
    expect(hello()).toEqual({ protocol_versions: ['0.1'], capabilities: [], max_message_size: MAX_MESSAGE_BYTES })
    expect(pong({ nonce: 'n' })).toEqual({ nonce: 'n', status: 'alive' })
    expect(task({ action: 'status', task_id: 't', extra: 1 })).toEqual({ action: 'status', task_id: 't', extra: 1 })
  })

  it('ping makes a random hex nonce unless given one', () => {
    const a = ping().nonce
    expect(a).toMatch(/^[0-9a-f]{32}$/)
    expect(ping().nonce).not.toBe(a)
    expect(ping({ nonce: 'fixed' })).toEqual({ nonce: 'fixed' })
  })

  it('errorPayload fills category and recoverable', () => {
    expect(errorPayload('E_RATE_LIMIT', 'slow down', { suggestion: { action: 'retry_after', delay_ms: 1000 } })).toEqual({
      code: 'E_RATE_LIMIT', category: 'transport', message: 'slow down', recoverable: true,
      suggestion: { action: 'retry_after', delay_ms: 1000 }
    })
    expect(errorPayload('E_SIGNATURE', 'bad sig', { field: 'sig' })).toEqual({
      code: 'E_SIGNATURE', category: 'auth', message: 'bad sig', recoverable: false, field: 'sig'
    })
    expect(errorPayload('E_AGENT_NOT_FOUND', 'who?').category).toBe('execution')
    expect(errorPayload('E_CAPABILITY_UNKNOWN', 'what?').category).toBe('validation')
    expect(errorPayload('E_INTERNAL', 'x', { recoverable: true }).recoverable).toBe(true)
  })

  it('MoltSpeakError.toPayload matches errorPayload', () => {
    const err = new MoltSpeakError('E_CONSENT', 'need consent', { field: 'pii_meta', context: { a: 1 } })
    expect(err.toPayload()).toEqual(errorPayload('E_CONSENT', 'need consent', { field: 'pii_meta', context: { a: 1 } }))
    expect(err).toMatchObject({ name: 'MoltSpeakError', code: 'E_CONSENT', category: 'privacy', recoverable: true })
    expect(MoltSpeakError.name).toBe('MoltSpeakError')
  })
})

describe('replyTo', () => {
  const request = createMessage({ op: 'query', from: alice, to: bob, p: query({ domain: 'weather' }), cls: 'conf' })

  it('answers the sender with re set', () => {
    const reply = replyTo(request, { from: bob, p: respond({ data: 20 }) })
    expect(reply).toMatchObject({ op: 'respond', re: request.id, cls: 'conf', from: bob })
    expect(reply.to).toEqual({ agent: 'alice', org: 'acme', key: MOLT_KEY })
    expect(reply.id).not.toBe(request.id)
    expect(validateMessage(reply)).toBe(reply)
  })

  it('builds error replies and overrides cls', () => {
    const reply = replyTo(request, { op: 'error', from: bob, p: errorPayload('E_CAPABILITY', 'no'), cls: 'int' })
    expect(reply).toMatchObject({ op: 'error', re: request.id, cls: 'int', p: { code: 'E_CAPABILITY', category: 'auth' } })
    expect(validateMessage(reply)).toBe(reply)
  })

  // issue #16: a reply to a pii request copied cls "pii" without pii_meta, which the schema rejects
  it('a reply to a pii request is conf unless it carries its own pii_meta, and always valid', () => {
    const piiMeta = { types: ['email' as const], consent: { granted_by: 'user:jane', purpose: 'support', proof: 'tok' } }
    const pii = createMessage({ op: 'query', from: alice, to: bob, p: query({ domain: 'crm' }), cls: 'pii', pii_meta: piiMeta })
    const plain = replyTo(pii, { from: bob, p: respond() })
    expect(plain.cls).toBe('conf')
    expect(plain.pii_meta).toBeUndefined()
    expect(validateMessage(plain)).toBe(plain)
    const withMeta = replyTo(pii, { from: bob, p: respond(), pii_meta: piiMeta })
    expect(withMeta.cls).toBe('pii')
    expect(validateMessage(withMeta)).toBe(withMeta)
  })

  it('a reply to a sec request across orgs is conf; within one org it stays sec', () => {
    const carol = { agent: 'carol', org: 'acme' }
    const sec = createMessage({ op: 'query', from: alice, to: carol, p: query({ domain: 'k' }), cls: 'sec' })
    expect(replyTo(sec, { from: carol, p: respond() }).cls).toBe('sec')
    const fromOtherOrg = replyTo(sec, { from: bob, p: respond() })
    expect(fromOtherOrg.cls).toBe('conf')
    expect(validateMessage(fromOtherOrg)).toBe(fromOtherOrg)
  })

  it('does not add a key the sender did not have', () => {
    const fromBob = createMessage({ op: 'ping', from: bob, to: alice, p: ping() })
    const reply = replyTo(fromBob, { op: 'pong', from: alice, p: pong({ nonce: fromBob.p.nonce as string }) })
    expect(reply.to).toEqual({ agent: 'bob', org: 'widgets' })
    expect(validateMessage(reply)).toBe(reply)
  })
})
