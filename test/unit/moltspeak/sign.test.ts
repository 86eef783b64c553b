import { generateKeyPairSync } from 'node:crypto'
import { describe, it, expect } from 'vitest'
import {
  canonicalize, InvalidKeyError, keyObjectToRawPublicKey, moltKeyToKeyObject, moltKeyToRaw, publicKeyToMoltKey,
  rawPrivateKeyToKeyObject, rawPublicKeyToKeyObject, signingBytes, signMessage, verifyMessage, verifyMessageAsync
} from '../../../src/moltspeak/index.js'
import { JS_SDK_SIG, MOLT_KEY, PUBLIC_KEY_B64, PYTHON_CANONICAL, PYTHON_SIG, privateKey, vectorMessage } from './fixtures.js'

describe('spec §1.7 test vector', () => {
  it('canonical form equals the Python/spec form byte for byte', () => {
    expect(canonicalize(vectorMessage())).toBe(PYTHON_CANONICAL)
    expect(Buffer.from(signingBytes(vectorMessage())).toString('utf8')).toBe(PYTHON_CANONICAL)
  })

  it('seed 32×0x01 gives the spec public key', () => {
    const raw = keyObjectToRawPublicKey(privateKey)
    expect(Buffer.from(raw).toString('base64')).toBe(PUBLIC_KEY_B64)
    expect(publicKeyToMoltKey(raw)).toBe(MOLT_KEY)
  })

  it('signing gives exactly the Python SDK signature', () => {
    const signed = signMessage(vectorMessage(), privateKey)
    expect(signed.sig).toBe(PYTHON_SIG)
    expect(verifyMessage(signed)).toBe(true)
    expect(verifyMessage(signed, moltKeyToKeyObject(MOLT_KEY))).toBe(true)
  })

  it('does not modify the input and ignores an existing sig when re-signing', () => {
    const msg = vectorMessage()
    const signed = signMessage(msg, privateKey)
    expect(msg.sig).toBeUndefined()
    expect(signMessage({ ...signed, sig: 'ed25519:AAAA' }, privateKey).sig).toBe(PYTHON_SIG)
  })

  it.each([
    ['p', (m: any) => { m.p.params.location = 'Paris' }],
    ['from.agent', (m: any) => { m.from.agent = 'mallory' }],
    ['to.agent', (m: any) => { m.to.agent = 'eve' }],
    ['ts', (m: any) => { m.ts += 1 }],
    ['added field', (m: any) => { m.re = '550e8400-e29b-41d4-a716-446655440001' }]
  ])('tampering with %s breaks verification', (_, tamper) => {
    const signed = signMessage(vectorMessage(), privateKey)
    const copy = structuredClone(signed)
    tamper(copy)
    expect(verifyMessage(copy)).toBe(false)
  })

  it('verifyMessageAsync (thread pool) agrees with verifyMessage', async () => {
    const signed = signMessage(vectorMessage(), privateKey)
    const tampered = structuredClone(signed)
    tampered.p.params = { location: 'Paris' }
    expect(await verifyMessageAsync(signed)).toBe(true)
    expect(await verifyMessageAsync(tampered)).toBe(false)
    expect(await verifyMessageAsync({ ...signed, sig: 'ed25519:AAAA' })).toBe(false)
    expect(await verifyMessageAsync({ ...signed, from: { ...signed.from, key: 'nope' } })).toBe(false)
    expect(await verifyMessageAsync(signed, generateKeyPairSync('ed25519').publicKey)).toBe(false)
  })

  it('rejects a wrong key', () => {
    const signed = signMessage(vectorMessage(), privateKey)
    const other = generateKeyPairSync('ed25519').publicKey
    expect(verifyMessage(signed, other)).toBe(false)
    const otherMoltKey = publicKeyToMoltKey(keyObjectToRawPublicKey(other))
    expect(verifyMessage({ ...signed, from: { ...signed.from, key: otherMoltKey } })).toBe(false)
  })

  it('does not accept the JS reference SDK signature (it leaves p/from/to unsigned)', () => {
    expect(verifyMessage({ ...vectorMessage(), sig: JS_SDK_SIG })).toBe(false)
  })

  it('returns false, never throws, on missing or malformed signatures and keys', () => {
    const signed = signMessage(vectorMessage(), privateKey)
    const sig = signed.sig as string
    expect(verifyMessage(vectorMessage())).toBe(false)
    expect(verifyMessage({ ...signed, sig: 'ed25519:' })).toBe(false)
    expect(verifyMessage({ ...signed, sig: 'rsa:' + sig.slice(8) })).toBe(false)
    expect(verifyMessage({ ...signed, sig: sig.slice(0, -4) })).toBe(false)
    expect(verifyMessage({ ...signed, sig: 42 as unknown as string })).toBe(false)
    expect(verifyMessage({ ...signed, from: { agent: 'alice', org: 'acme' } })).toBe(false)
    expect(verifyMessage({ ...signed, from: { agent: 'alice', org: 'acme', key: 'ed25519:nope' } })).toBe(false)
    expect(verifyMessage({ ...signed, p: { f: () => 1 } })).toBe(false)
    expect(verifyMessage(signed, generateKeyPairSync('x25519').publicKey)).toBe(false)
  })
})

describe('keys', () => {
  it('round-trips raw keys and molt keys', () => {
    const raw = moltKeyToRaw(MOLT_KEY)
    expect(raw).toBeInstanceOf(Uint8Array)
    expect(raw.length).toBe(32)
    expect(publicKeyToMoltKey(raw)).toBe(MOLT_KEY)
    expect(keyObjectToRawPublicKey(rawPublicKeyToKeyObject(raw))).toEqual(raw)
  })

  it('caches public KeyObjects', () => {
    expect(moltKeyToKeyObject(MOLT_KEY)).toBe(moltKeyToKeyObject(MOLT_KEY))
    expect(rawPublicKeyToKeyObject(moltKeyToRaw(MOLT_KEY))).toBe(moltKeyToKeyObject(MOLT_KEY))
  })

  it.each([
    ['wrong prefix', 'x25519:' + PUBLIC_KEY_B64],
    ['no prefix', PUBLIC_KEY_B64],
    ['short', 'ed25519:' + PUBLIC_KEY_B64.slice(4)],
    ['64 bytes', 'ed25519:' + Buffer.alloc(64, 1).toString('base64')],
    ['not base64', 'ed25519:' + '!'.repeat(43) + '=']
  ])('moltKeyToRaw rejects %s', (_, key) => {
    expect(() => moltKeyToRaw(key)).toThrow(InvalidKeyError)
    expect(() => moltKeyToKeyObject(key)).toThrow(expect.objectContaining({ name: 'InvalidKeyError' }))
  })

  it('rejects raw keys that are not 32 bytes', () => {
    expect(() => publicKeyToMoltKey(new Uint8Array(31))).toThrow(InvalidKeyError)
    expect(() => rawPublicKeyToKeyObject(new Uint8Array(33))).toThrow(InvalidKeyError)
    expect(() => rawPrivateKeyToKeyObject(new Uint8Array(64))).toThrow(InvalidKeyError)
  })

  it('signs the same as a generated node:crypto key pair', () => {
    const { privateKey: priv, publicKey } = generateKeyPairSync('ed25519')
    const msg = { ...vectorMessage(), from: { agent: 'carol', org: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(publicKey)) } }
    const signed = signMessage(msg, priv)
    expect(verifyMessage(signed)).toBe(true)
    expect(verifyMessage(signed, publicKey)).toBe(true)
  })
})
