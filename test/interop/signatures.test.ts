import { randomBytes } from 'node:crypto'
import { beforeAll, expect, it } from 'vitest'
import {
  canonicalizeSource, keyObjectToRawPublicKey, publicKeyToMoltKey, rawPrivateKeyToKeyObject, signingBytes, signMessage,
  type MoltMessage
} from '../../src/moltspeak/index.js'
import { corpus, UNSIGNABLE_BY_MOLT, unsignedCases, type Case } from './corpus.js'
import { describeWithPython, pyPublicKey, pySign, pyVerify } from './python.js'
import { moltVerdict, pyVerdict } from './verdicts.js'

/*
 * molt against an independent implementation (moltspeak_ref.py), in-process:
 * Python signs and molt verifies the bytes; molt signs and Python verifies.
 * Target: 100 % agreement, every refusal with the same code and a reason on both sides.
 */

const SEED_PY = randomBytes(32)
const SEED_MOLT = randomBytes(32)
const moltKey = rawPrivateKeyToKeyObject(SEED_MOLT)
let pyKey: string
let cases: Case[]

describeWithPython('cross-implementation signatures, in-process', () => {
  beforeAll(async () => {
    pyKey = await pyPublicKey(SEED_PY)
    // both derive the same public key from a seed
    expect(publicKeyToMoltKey(keyObjectToRawPublicKey(rawPrivateKeyToKeyObject(SEED_PY)))).toBe(pyKey)
    cases = corpus({ from: { agent: 'py', org: 'ref', key: pyKey }, to: { agent: 'molt', org: 'molt' } })
  })

  it('the Python program reproduces the spec signature test vector (seed 32×0x01)', async () => {
    const text = '{"v":"0.1","id":"550e8400-e29b-41d4-a716-446655440000","ts":1703280000000,"op":"query","from":{"agent":"alice","org":"acme","key":"ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="},"to":{"agent":"bob","org":"widgets"},"p":{"domain":"weather","intent":"forecast","params":{"location":"Tokyo"}},"cls":"int"}'
    const [signed] = await pySign(new Uint8Array(32).fill(1), [text])
    expect(JSON.parse(signed).sig).toBe('ed25519:13jk4medcBZf87N+LoKB008x+pE+vo2GZxeN1/TizyGNwHsWju28SXnaFJNsjlNvPcm0zuW40d7WjyL3xZBYCg==')
    expect(moltVerdict(signed)).toEqual({ code: 'accept' })
  })

  it('Python signs, molt verifies: both give the documented verdict for every case', async () => {
    const signed = await pySign(SEED_PY, cases.map(c => c.text))
    const python = await pyVerify(signed)
    const rows = cases.map((c, i) => ({ name: c.name, expect: c.expect, molt: moltVerdict(signed[i]), python: pyVerdict(python[i]) }))
    expect(rows.filter(r => r.molt.code !== r.expect || r.python.code !== r.expect)).toEqual([])
    // every refusal names its reason on both sides
    for (const r of rows.filter(r => r.expect !== 'accept')) {
      expect(r.molt.reason, r.name).toMatch(/\w/)
      expect(r.python.reason, r.name).toMatch(/\w/)
    }
    // and where both accept, they verified the very same bytes
    for (const [i, c] of cases.entries()) {
      if (c.expect === 'accept') expect(canonicalizeSource(signed[i]), c.name).toBe(python[i].canonical)
    }
    // the corpus holds refusals of each kind, so a pass is not a pass by omission
    expect(rows.filter(r => r.expect === 'E_PARSE').length).toBeGreaterThanOrEqual(3)
    expect(rows.filter(r => r.expect === 'E_SIGNATURE').length).toBeGreaterThanOrEqual(5)
  })

  it('a tampered Python-signed message is refused by both, E_SIGNATURE', async () => {
    const picked = cases.filter(c => c.expect === 'accept')
    const signed = await pySign(SEED_PY, picked.map(c => c.text))
    // change one value in a way both parsers see: the domain string
    const tampered = signed.map(t => t.replace(/"domain":"/, '"domain":"x'))
    const python = await pyVerify(tampered)
    const rows = picked.map((c, i) => ({ name: c.name, changed: tampered[i] !== signed[i], molt: moltVerdict(tampered[i]).code, python: pyVerdict(python[i]).code }))
    for (const r of rows.filter(r => r.changed)) expect([r.name, r.molt, r.python]).toEqual([r.name, 'E_SIGNATURE', 'E_SIGNATURE'])
    expect(rows.filter(r => r.changed).length).toBeGreaterThan(40)
  })

  it('unsigned messages of every op are accepted by both', async () => {
    const unsigned = unsignedCases(cases)
    const python = await pyVerify(unsigned.map(c => c.text))
    expect(unsigned.map((c, i) => [c.name, moltVerdict(c.text).code, pyVerdict(python[i]).code]))
      .toEqual(unsigned.map(c => [c.name, 'accept', 'accept']))
  })

  it('molt signs, Python verifies: every message molt can sign verifies in Python over the same bytes', async () => {
    const signed: Array<{ name: string, wire: string, message: MoltMessage }> = []
    const unsignable: string[] = []
    for (const c of cases) {
      const value = JSON.parse(c.text) as MoltMessage
      value.from = { ...value.from, key: publicKeyToMoltKey(keyObjectToRawPublicKey(moltKey)) }
      try {
        const message = signMessage(value, moltKey)
        signed.push({ name: c.name, wire: JSON.stringify(message), message })
      } catch {
        unsignable.push(c.name)
      }
    }
    expect(unsignable).toEqual(UNSIGNABLE_BY_MOLT)
    const python = await pyVerify(signed.map(s => s.wire))
    expect(signed.map((s, i) => [s.name, pyVerdict(python[i]).code])).toEqual(signed.map(s => [s.name, 'accept']))
    for (const [i, s] of signed.entries()) {
      expect(Buffer.from(signingBytes(s.message)).toString('utf8'), s.name).toBe(python[i].canonical)
      // and molt's own receive path agrees with its send path
      expect(moltVerdict(s.wire).code, s.name).toBe('accept')
    }
  })

  it('molt refuses to sign an integer JSON cannot carry exactly (2^60 is written 1152921504606847000)', async () => {
    const value = JSON.parse(cases[2].text) as MoltMessage
    value.from = { ...value.from, key: publicKeyToMoltKey(keyObjectToRawPublicKey(moltKey)) }
    value.p = { domain: 'n', big: 2 ** 60 }
    expect(() => signMessage(value, moltKey)).toThrow(/Cannot sign: Signed integer 1152921504606847000 at p\.big has no exact double value/)
    value.p = { domain: 'n', big: 2 ** 53 }
    const wire = JSON.stringify(signMessage(value, moltKey))
    expect(pyVerdict((await pyVerify([wire]))[0]).code).toBe('accept')
  })
})
