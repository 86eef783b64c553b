import { describe, it, expect } from 'vitest'
import {
  MAX_MESSAGE_BYTES, MoltSpeakError, parseMessage, validateMessage, type ErrorCode, type MoltMessage
} from '../../../src/moltspeak/index.js'
import { MOLT_KEY, vectorMessage } from './fixtures.js'

type Mutable = Record<string, any>

function expectError (fn: () => unknown, code: ErrorCode, field?: string): MoltSpeakError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(caught).toBeInstanceOf(MoltSpeakError)
  const err = caught as MoltSpeakError
  expect(err.name).toBe('MoltSpeakError')
  expect({ code: err.code, field: err.field }).toEqual({ code, field })
  return err
}

function mutated (mutate: (m: Mutable) => void): Mutable {
  const m = structuredClone(vectorMessage()) as Mutable
  mutate(m)
  return m
}

function nested (depth: number): Record<string, unknown> {
  // p itself is depth 0; each wrapping object adds one level
  let p: Record<string, unknown> = {}
  for (let i = 0; i < depth; i++) p = { a: p }
  return p
}

const PII_META = {
  types: ['email'],
  consent: { granted_by: 'user:jane', purpose: 'support', proof: 'consent-123' }
}

describe('validateMessage', () => {
  it('accepts the spec test vector and returns the same object', () => {
    const msg = vectorMessage()
    expect(validateMessage(msg)).toBe(msg)
  })

  it('keeps unknown top-level fields, AgentRef fields and ext namespaces', () => {
    const msg = mutated(m => {
      m.future = { x: 1 }
      m.from.trust = { score: 0.9 }
      m.ext = { 'anthropic.reasoning': { depth: 2 }, 'unknown.ns': {} }
    })
    const out = validateMessage(msg)
    expect(out.future).toEqual({ x: 1 })
    expect(out.from.trust).toEqual({ score: 0.9 })
    expect(out.ext).toEqual({ 'anthropic.reasoning': { depth: 2 }, 'unknown.ns': {} })
  })

  it('accepts every optional field in its valid form', () => {
    const msg = mutated(m => {
      m.sig = 'ed25519:' + Buffer.alloc(64, 7).toString('base64')
      m.re = 'anything'
      m.exp = 0
      m.cap = ['tool.invoke']
      m.to.key = MOLT_KEY
      m.to.enc_key = 'x25519:' + Buffer.alloc(32, 2).toString('base64')
      m.from.agent = 'a'.repeat(128)
      m.to.org = 'Org_with-dash_9'
      m.ts = 0
    })
    expect(() => validateMessage(msg)).not.toThrow()
  })

  it.each<[string, (m: Mutable) => void, ErrorCode, string]>([
    ['missing v', m => { delete m.v }, 'E_MISSING_FIELD', 'v'],
    ['v undefined', m => { m.v = undefined }, 'E_MISSING_FIELD', 'v'],
    ['v 0.2', m => { m.v = '0.2' }, 'E_VERSION', 'v'],
    ['v number', m => { m.v = 0.1 }, 'E_VERSION', 'v'],
    ['missing id', m => { delete m.id }, 'E_MISSING_FIELD', 'id'],
    ['missing ts', m => { delete m.ts }, 'E_MISSING_FIELD', 'ts'],
    ['missing op', m => { delete m.op }, 'E_MISSING_FIELD', 'op'],
    ['missing from', m => { delete m.from }, 'E_MISSING_FIELD', 'from'],
    ['missing to', m => { delete m.to }, 'E_MISSING_FIELD', 'to'],
    ['missing p', m => { delete m.p }, 'E_MISSING_FIELD', 'p'],
    ['missing cls', m => { delete m.cls }, 'E_MISSING_FIELD', 'cls'],
    ['missing from.agent', m => { delete m.from.agent }, 'E_MISSING_FIELD', 'from.agent'],
    ['missing from.org', m => { delete m.from.org }, 'E_MISSING_FIELD', 'from.org'],
    ['missing to.agent', m => { delete m.to.agent }, 'E_MISSING_FIELD', 'to.agent'],
    ['missing to.org', m => { delete m.to.org }, 'E_MISSING_FIELD', 'to.org'],
    ['upper-case id', m => { m.id = m.id.toUpperCase() }, 'E_SCHEMA', 'id'],
    ['non-UUID id', m => { m.id = 'msg-1' }, 'E_SCHEMA', 'id'],
    ['numeric id', m => { m.id = 1 }, 'E_SCHEMA', 'id'],
    ['negative ts', m => { m.ts = -1 }, 'E_SCHEMA', 'ts'],
    ['fractional ts', m => { m.ts = 1.5 }, 'E_SCHEMA', 'ts'],
    ['string ts', m => { m.ts = '1703280000000' }, 'E_SCHEMA', 'ts'],
    ['unknown op', m => { m.op = 'trust_query' }, 'E_SCHEMA', 'op'],
    ['upper-case op', m => { m.op = 'QUERY' }, 'E_SCHEMA', 'op'],
    ['from not an object', m => { m.from = 'alice' }, 'E_SCHEMA', 'from'],
    ['to an array', m => { m.to = [] }, 'E_SCHEMA', 'to'],
    ['empty name', m => { m.to.org = '' }, 'E_SCHEMA', 'to.org'],
    ['129-char name', m => { m.to.agent = 'a'.repeat(129) }, 'E_SCHEMA', 'to.agent'],
    ['numeric name', m => { m.from.org = 7 }, 'E_SCHEMA', 'from.org'],
    ['key without prefix', m => { m.from.key = m.from.key.slice(8) }, 'E_SCHEMA', 'from.key'],
    ['key of 64 bytes', m => { m.from.key = 'ed25519:' + Buffer.alloc(64).toString('base64') }, 'E_SCHEMA', 'from.key'],
    ['enc_key with ed25519 prefix', m => { m.to.enc_key = MOLT_KEY }, 'E_SCHEMA', 'to.enc_key'],
    ['p an array', m => { m.p = [] }, 'E_SCHEMA', 'p'],
    ['p null', m => { m.p = null }, 'E_SCHEMA', 'p'],
    ['long cls', m => { m.cls = 'internal' }, 'E_SCHEMA', 'cls'],
    ['sig without prefix', m => { m.sig = 'abc' }, 'E_SCHEMA', 'sig'],
    ['sig with bad chars', m => { m.sig = 'ed25519:ab-c' }, 'E_SCHEMA', 'sig'],
    ['re a number', m => { m.re = 5 }, 'E_SCHEMA', 're'],
    ['re null', m => { m.re = null }, 'E_SCHEMA', 're'],
    ['negative exp', m => { m.exp = -5 }, 'E_SCHEMA', 'exp'],
    ['cap a string', m => { m.cap = 'tool.invoke' }, 'E_SCHEMA', 'cap'],
    ['cap with a number', m => { m.cap = ['a', 1] }, 'E_SCHEMA', 'cap'],
    ['ext an array', m => { m.ext = [] }, 'E_SCHEMA', 'ext'],
    ['ext value not an object', m => { m.ext = { 'acme.x': 1 } }, 'E_SCHEMA', 'ext.acme.x'],
    ['malformed pii_meta on a non-pii message', m => { m.pii_meta = { types: [] } }, 'E_SCHEMA', 'pii_meta.types'],
    ['pii without pii_meta', m => { m.cls = 'pii' }, 'E_CONSENT', 'pii_meta'],
    ['pii with empty types', m => { m.cls = 'pii'; m.pii_meta = { ...PII_META, types: [] } }, 'E_CONSENT', 'pii_meta.types'],
    ['pii with unknown type', m => { m.cls = 'pii'; m.pii_meta = { ...PII_META, types: ['email', 'dna'] } }, 'E_CONSENT', 'pii_meta.types'],
    ['pii without consent', m => { m.cls = 'pii'; m.pii_meta = { types: ['email'] } }, 'E_CONSENT', 'pii_meta.consent'],
    ['pii without consent proof', m => {
      m.cls = 'pii'
      m.pii_meta = { types: ['email'], consent: { granted_by: 'u', purpose: 'p' } }
    }, 'E_CONSENT', 'pii_meta.consent.proof'],
    ['pii with bad mask_fields', m => { m.cls = 'pii'; m.pii_meta = { ...PII_META, mask_fields: 'email' } }, 'E_CONSENT', 'pii_meta.mask_fields'],
    ['sec across orgs', m => { m.cls = 'sec' }, 'E_CLASSIFICATION', 'cls']
  ])('rejects %s', (_, mutate, code, field) => {
    expectError(() => validateMessage(mutated(mutate)), code, field)
  })

  // issue #16: the v0.1 schema allows any 1–128 characters (the TS SDK's [a-zA-Z0-9_-] is not the schema)
  it.each([
    ['a dot', 'bob.v2'], ['a space', 'Bob Assistant'], ['a DID', 'did:molt:key:z6Mk'], ['non-ASCII', 'Zoë'],
    ['128 characters', 'a'.repeat(128)], ['128 astral characters (256 UTF-16 units)', '😀'.repeat(128)]
  ])('accepts a name with %s in from.agent and to.agent', (_, name) => {
    expect(() => validateMessage(mutated(m => { m.from.agent = name; m.to.agent = name; m.to.org = name }))).not.toThrow()
  })

  it('refuses 129 astral characters by code point count', () => {
    expectError(() => validateMessage(mutated(m => { m.to.agent = '😀'.repeat(129) })), 'E_SCHEMA', 'to.agent')
  })

  it('rejects values that are not plain objects with E_SCHEMA', () => {
    for (const value of [null, 1, 'msg', [], [vectorMessage()], new Date()]) {
      expectError(() => validateMessage(value), 'E_SCHEMA', '')
    }
  })

  it('accepts pii with consent and sec within one org', () => {
    expect(() => validateMessage(mutated(m => { m.cls = 'pii'; m.pii_meta = PII_META }))).not.toThrow()
    expect(() => validateMessage(mutated(m => { m.cls = 'sec'; m.to.org = 'acme' }))).not.toThrow()
  })

  it('accepts payload depth 50 and rejects 51 with E_INVALID_PARAM on p', () => {
    expect(() => validateMessage(mutated(m => { m.p = { domain: 'd', ...nested(50) } }))).not.toThrow()
    expectError(() => validateMessage(mutated(m => { m.p = { domain: 'd', ...nested(51) } })), 'E_INVALID_PARAM', 'p')
    // arrays count as levels too
    let arr: unknown = []
    for (let i = 0; i < 50; i++) arr = [arr]
    expectError(() => validateMessage(mutated(m => { m.p = { domain: 'd', arr } })), 'E_INVALID_PARAM', 'p')
  })

  it('honours maxPayloadDepth', () => {
    const msg = mutated(m => { m.p = { domain: 'd', ...nested(3) } })
    expect(() => validateMessage(msg, { maxPayloadDepth: 3 })).not.toThrow()
    expectError(() => validateMessage(msg, { maxPayloadDepth: 2 }), 'E_INVALID_PARAM', 'p')
  })

  it('terminates on a cyclic payload', () => {
    const msg = mutated(() => {})
    msg.p.self = msg.p
    expectError(() => validateMessage(msg), 'E_INVALID_PARAM', 'p')
  })

  it('fills category and recoverable from the code', () => {
    const err = expectError(() => validateMessage(mutated(m => { m.id = 'x' })), 'E_SCHEMA', 'id')
    expect(err.category).toBe('validation')
    expect(err.recoverable).toBe(true)
    expect(err.toPayload()).toEqual({ code: 'E_SCHEMA', category: 'validation', message: err.message, recoverable: true, field: 'id' })
    const version = expectError(() => validateMessage(mutated(m => { m.v = '1.0' })), 'E_VERSION', 'v')
    expect(version.category).toBe('protocol')
    expect(version.recoverable).toBe(false)
  })
})

describe('op-specific payload rules', () => {
  function withOp (op: string, p: Record<string, unknown>, extra: Mutable = {}): Mutable {
    return mutated(m => { Object.assign(m, { op, p }, extra) })
  }

  it.each<[string, Mutable, ErrorCode, string]>([
    ['query without domain', withOp('query', { intent: 'x' }), 'E_MISSING_FIELD', 'p.domain'],
    ['query with numeric domain', withOp('query', { domain: 1 }), 'E_SCHEMA', 'p.domain'],
    ['respond without status', withOp('respond', {}, { re: 'x' }), 'E_MISSING_FIELD', 'p.status'],
    ['respond with bad status', withOp('respond', { status: 'ok' }, { re: 'x' }), 'E_SCHEMA', 'p.status'],
    ['error without code', withOp('error', { category: 'execution', message: 'm' }), 'E_MISSING_FIELD', 'p.code'],
    ['error without category', withOp('error', { code: 'E_INTERNAL', message: 'm' }), 'E_MISSING_FIELD', 'p.category'],
    ['error with bad category', withOp('error', { code: 'E_INTERNAL', category: 'oops', message: 'm' }), 'E_SCHEMA', 'p.category'],
    ['error without message', withOp('error', { code: 'E_INTERNAL', category: 'execution' }), 'E_MISSING_FIELD', 'p.message'],
    ['task without action', withOp('task', { task_id: 't' }), 'E_MISSING_FIELD', 'p.action'],
    ['task with bad action', withOp('task', { action: 'run', task_id: 't' }), 'E_SCHEMA', 'p.action'],
    ['task without task_id', withOp('task', { action: 'create' }), 'E_MISSING_FIELD', 'p.task_id'],
    ['stream with bad action', withOp('stream', { action: 'open', stream_id: 's' }), 'E_SCHEMA', 'p.action'],
    ['stream without stream_id', withOp('stream', { action: 'chunk' }), 'E_MISSING_FIELD', 'p.stream_id'],
    ['tool without action', withOp('tool', { tool: 'x' }), 'E_MISSING_FIELD', 'p.action'],
    ['tool with bad action', withOp('tool', { action: 'call' }), 'E_SCHEMA', 'p.action'],
    ['consent with bad action', withOp('consent', { action: 'allow' }), 'E_SCHEMA', 'p.action']
  ])('rejects %s', (_, msg, code, field) => {
    expectError(() => validateMessage(msg), code, field)
  })

  it('accepts respond without re (optional in the schema; it answers no pending request)', () => {
    expect(() => validateMessage(withOp('respond', { status: 'success' }))).not.toThrow()
  })

  it('accepts any string error code (discovery codes are outside the schema enum)', () => {
    const msg = withOp('error', { code: 'E_REGISTRATION_CONFLICT', category: 'validation', message: 'taken' })
    expect(() => validateMessage(msg)).not.toThrow()
  })

  it.each(['hello', 'verify', 'register', 'discover', 'ping', 'pong'])('has no payload requirement for %s', op => {
    expect(() => validateMessage(withOp(op, {}))).not.toThrow()
  })
})

describe('parseMessage', () => {
  const json = JSON.stringify(vectorMessage())

  it('parses bytes and strings', () => {
    const expected: MoltMessage = vectorMessage()
    expect(parseMessage(Buffer.from(json))).toEqual(expected)
    expect(parseMessage(new TextEncoder().encode(json))).toEqual(expected)
    expect(parseMessage(json)).toEqual(expected)
  })

  it('rejects invalid UTF-8 and invalid JSON with E_PARSE', () => {
    const bytes = Buffer.from(json)
    const bad = Buffer.concat([bytes.subarray(0, 20), Buffer.from([0xff, 0xfe]), bytes.subarray(20)])
    expectError(() => parseMessage(bad), 'E_PARSE')
    expectError(() => parseMessage(Buffer.from([0xc3])), 'E_PARSE')
    expectError(() => parseMessage('{"v":"0.1",'), 'E_PARSE')
    expectError(() => parseMessage(''), 'E_PARSE')
  })

  it('rejects JSON that is not an object with E_SCHEMA', () => {
    expectError(() => parseMessage('[1,2]'), 'E_SCHEMA', '')
    expectError(() => parseMessage('null'), 'E_SCHEMA', '')
  })

  it('runs the message checks after parsing', () => {
    expectError(() => parseMessage(JSON.stringify({ ...vectorMessage(), v: '0.2' })), 'E_VERSION', 'v')
  })

  /** A valid message of exactly `size` UTF-8 bytes, padded in p with `pad` */
  function messageOfSize (size: number, pad: string): string {
    const base = JSON.stringify({ ...vectorMessage(), p: { domain: 'weather', pad: '' } })
    const missing = size - Buffer.byteLength(base)
    const unit = Buffer.byteLength(pad)
    const text = JSON.stringify({ ...vectorMessage(), p: { domain: 'weather', pad: pad.repeat(Math.floor(missing / unit)) + 'x'.repeat(missing % unit) } })
    expect(Buffer.byteLength(text)).toBe(size)
    return text
  }

  it('accepts exactly MAX_MESSAGE_BYTES and rejects one byte more (bytes)', () => {
    expect(() => parseMessage(Buffer.from(messageOfSize(MAX_MESSAGE_BYTES, 'x')))).not.toThrow()
    const err = expectError(() => parseMessage(Buffer.from(messageOfSize(MAX_MESSAGE_BYTES + 1, 'x'))), 'E_INVALID_PARAM', '')
    expect(err.message).toContain(String(MAX_MESSAGE_BYTES))
  })

  it('counts UTF-8 bytes, not characters, for strings', () => {
    expect(() => parseMessage(messageOfSize(MAX_MESSAGE_BYTES, '漢'))).not.toThrow()
    const over = messageOfSize(MAX_MESSAGE_BYTES + 1, '漢')
    expect(over.length).toBeLessThan(MAX_MESSAGE_BYTES)
    expectError(() => parseMessage(over), 'E_INVALID_PARAM', '')
  })

  it('checks the size before parsing and honours maxMessageBytes', () => {
    expectError(() => parseMessage('x'.repeat(101), { maxMessageBytes: 100 }), 'E_INVALID_PARAM', '')
    expectError(() => parseMessage(Buffer.alloc(101), { maxMessageBytes: 100 }), 'E_INVALID_PARAM', '')
  })
})
