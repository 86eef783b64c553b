import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identityFromKey, type Identity } from '../../src/identity/index.js'
import {
  issueCertificate, revokeCertificate, decodeRevocation, verifyRevocation, verifyOrgClaim, importRevocation, loadRevocations, InvalidCertificateError,
  type OrgCertificate, type OrgRoot
} from '../../src/identity/org/index.js'
import { canonicalize, keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'

const day = 86_400_000
const orgKey = generateKeyPairSync('ed25519').privateKey
const rogueKey = generateKeyPairSync('ed25519').privateKey
const roots: OrgRoot[] = [{ name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)) }]
let agent: Identity
let cert: OrgCertificate

beforeAll(async () => {
  agent = identityFromKey(await generateKeyPair('Ed25519'))
  cert = issueCertificate({ org: 'acme', agent: 'translator', peerId: agent.peerId.toString(), expires: Date.now() + 90 * day }, orgKey)
})

const claim = (revocations: unknown[], now?: number): ReturnType<typeof verifyOrgClaim> =>
  verifyOrgClaim({ key: agent.moltKey, cert }, 'acme', { roots, revocations, now })

describe('certificate revocation (format and check)', () => {
  it('a revocation signed by the trusted org makes its certificate revoked, from its time on', () => {
    const revoked = Date.now() - 1000
    const revocation = revokeCertificate({ org: 'acme', serial: cert.serial, revoked, reason: 'key leaked' }, orgKey)
    expect(verifyRevocation(revocation, roots)).toBe(true)
    expect(claim([revocation])).toMatchObject({ verified: false, code: 'revoked' })
    // before the revocation time the certificate held: the check is the revocation, nothing else
    expect(claim([revocation], revoked - 1).verified).toBe(true)
    expect(claim([]).verified).toBe(true)
    // it survives its text form
    expect(decodeRevocation(canonicalize(revocation))).toEqual(revocation)
  })

  it('a revocation by another key, of another serial, or altered after signing counts for nothing', () => {
    const forged = revokeCertificate({ org: 'acme', serial: cert.serial, revoked: Date.now() - 1000 }, rogueKey)
    expect(verifyRevocation(forged, roots)).toBe(false)
    expect(claim([forged]).verified).toBe(true)
    const other = revokeCertificate({ org: 'acme', serial: 'f'.repeat(32), revoked: Date.now() - 1000 }, orgKey)
    expect(claim([other]).verified).toBe(true)
    const moved = { ...other, serial: cert.serial }
    expect(verifyRevocation(moved, roots)).toBe(false)
    expect(claim([moved]).verified).toBe(true)
    expect(claim([null, 7, 'x', { serial: cert.serial, revoked: 0 }]).verified).toBe(true)
  })

  it('decoding bounds size and nesting and refuses unknown fields', () => {
    const revocation = revokeCertificate({ org: 'acme', serial: cert.serial }, orgKey)
    expect(() => decodeRevocation('{"a":' + '['.repeat(50) + ']'.repeat(50) + '}')).toThrow(/nests deeper/)
    expect(() => decodeRevocation(JSON.stringify({ ...revocation, pad: 'x'.repeat(9000) }))).toThrow(/over the 8192 byte limit/)
    expect(() => decodeRevocation(JSON.stringify({ ...revocation, extra: 1 }))).toThrow(InvalidCertificateError)
    expect(() => revokeCertificate({ org: 'acme', serial: 'nope' }, orgKey)).toThrow(/serial/)
    expect(() => revokeCertificate({ org: 'acme', serial: cert.serial, reason: 'x'.repeat(257) }, orgKey)).toThrow(/reason/)
  })
})

describe('a verifier\'s stored revocations', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'molt-revocations-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('keeps only revocations signed by a trusted root, once each, and they revoke', async () => {
    expect(await loadRevocations(dir)).toEqual([])
    const revocation = revokeCertificate({ org: 'acme', serial: cert.serial, revoked: Date.now() - 1000 }, orgKey)
    await expect(importRevocation(dir, revokeCertificate({ org: 'acme', serial: cert.serial }, rogueKey), roots)).rejects.toThrow(/not signed by a trusted key of acme/)
    await expect(importRevocation(dir, revocation, [])).rejects.toThrow(InvalidCertificateError)
    expect(await importRevocation(dir, revocation, roots)).toBe(true)
    expect(await importRevocation(dir, revocation, roots)).toBe(false)
    const stored = await loadRevocations(dir)
    expect(stored).toEqual([revocation])
    expect(claim(stored)).toMatchObject({ code: 'revoked' })
  })

  it('a corrupt or hostile store is refused with a clear error', async () => {
    const bad = await mkdtemp(join(tmpdir(), 'molt-revocations-'))
    try {
      await writeFile(join(bad, 'org-revocations.json'), '['.repeat(10) + ']'.repeat(10))
      await expect(loadRevocations(bad)).rejects.toThrow(/nests too deep/)
      await writeFile(join(bad, 'org-revocations.json'), '[{"v":1}]')
      await expect(loadRevocations(bad)).rejects.toThrow(InvalidCertificateError)
      await writeFile(join(bad, 'org-revocations.json'), '{')
      await expect(loadRevocations(bad)).rejects.toThrow(/not JSON/)
    } finally {
      await rm(bad, { recursive: true, force: true })
    }
  })
})
