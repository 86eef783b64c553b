import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPairSync, sign } from 'node:crypto'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identityFromKey, type Identity } from '../../src/identity/index.js'
import {
  issueCertificate, decodeCertificate, encodeCertificate, verifyOrgClaim, createOrgKey, loadOrgKey, orgKeyPath,
  installCertificate, loadInstalledCertificate, tooDeep, InvalidCertificateError, OrgKeyError,
  MAX_CERT_BYTES, MAX_CERT_VALIDITY, type OrgCertificate, type OrgRoot
} from '../../src/identity/org/index.js'
import { canonicalize, keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'
import { signCard, verifyCard, InvalidCardError } from '../../src/services/card/index.js'
import { parseConfig } from '../../src/config/config.js'
import { cardFields } from '../support/cards.js'

const day = 86_400_000
let agent: Identity
let other: Identity
const orgKey = generateKeyPairSync('ed25519').privateKey
const rogueKey = generateKeyPairSync('ed25519').privateKey
const orgPublic = publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey))
const roots: OrgRoot[] = [{ name: 'acme', key: orgPublic }]

beforeAll(async () => {
  agent = identityFromKey(await generateKeyPair('Ed25519'))
  other = identityFromKey(await generateKeyPair('Ed25519'))
})

function issue (overrides: { org?: string, peerId?: string, issued?: number, expires?: number } = {}, key = orgKey): OrgCertificate {
  const now = Date.now()
  return issueCertificate({
    org: overrides.org ?? 'acme',
    agent: 'translator',
    peerId: overrides.peerId ?? agent.peerId.toString(),
    capabilities: ['translate.text', 'summarise'],
    issued: overrides.issued ?? now,
    expires: overrides.expires ?? now + 90 * day
  }, key)
}

/** Re-sign a changed certificate with `key`, as a forger holding that key would */
function resign (cert: OrgCertificate, key = rogueKey): OrgCertificate {
  const { sig: _sig, ...unsigned } = cert
  return { ...unsigned, sig: 'ed25519:' + sign(null, Buffer.from(canonicalize(unsigned), 'utf8'), key).toString('base64') }
}

const subject = (cert: unknown, who = agent): { key: string, cert: unknown } => ({ key: who.moltKey, cert })

describe('organisation certificates: verdicts', () => {
  it('a certificate from a trusted org for this key is verified, with what it vouches for', () => {
    const cert = issue()
    const verdict = verifyOrgClaim(subject(cert), 'acme', { roots })
    expect(verdict).toMatchObject({ org: 'acme', verified: true, code: 'verified', reason: 'verified for acme', agent: 'translator', capabilities: ['translate.text', 'summarise'], serial: cert.serial })
    // the certificate survives its own encoding (files, cards) unchanged
    expect(decodeCertificate(encodeCertificate(cert))).toEqual(cert)
  })

  it('an org claim without a certificate, or no claim at all, is unverified', () => {
    expect(verifyOrgClaim({ key: agent.moltKey }, 'acme', { roots })).toMatchObject({ verified: false, code: 'no_certificate' })
    expect(verifyOrgClaim(subject(issue()), undefined, { roots })).toMatchObject({ verified: false, code: 'no_claim' })
  })

  it('an expired certificate is unverified; one issued in the future too', () => {
    const now = Date.now()
    const expired = issue({ issued: now - 10 * day, expires: now - day })
    expect(verifyOrgClaim(subject(expired), 'acme', { roots })).toMatchObject({ verified: false, code: 'expired' })
    // the same certificate was good while it lasted: the mechanism is the time check
    expect(verifyOrgClaim(subject(expired), 'acme', { roots, now: now - 2 * day }).verified).toBe(true)
    const future = issue({ issued: now + day, expires: now + 2 * day })
    expect(verifyOrgClaim(subject(future), 'acme', { roots })).toMatchObject({ verified: false, code: 'not_yet_valid' })
  })

  it('a claim of another org than the certificate\'s is unverified (wrong org name)', () => {
    const verdict = verifyOrgClaim(subject(issue()), 'globex', { roots: [...roots, { name: 'globex', key: orgPublic }] })
    expect(verdict).toMatchObject({ verified: false, code: 'wrong_org_name' })
    expect(verdict.reason).toContain('for org acme, not globex')
  })

  it('an org the verifier does not trust is unknown', () => {
    expect(verifyOrgClaim(subject(issue()), 'acme', { roots: [] })).toMatchObject({ verified: false, code: 'unknown_org' })
    expect(verifyOrgClaim(subject(issue()), 'acme', { roots: [{ name: 'globex', key: orgPublic }] })).toMatchObject({ code: 'unknown_org' })
  })

  it('a certificate signed by another key in the trusted org\'s name is forged, whatever org_key it names', () => {
    const own = issue({}, rogueKey)
    expect(own.org_key).not.toBe(orgPublic)
    expect(verifyOrgClaim(subject(own), 'acme', { roots })).toMatchObject({ verified: false, code: 'forged_signature' })
    const posing = resign({ ...issue(), org_key: orgPublic })
    expect(verifyOrgClaim(subject(posing), 'acme', { roots })).toMatchObject({ verified: false, code: 'forged_signature' })
  })

  it('a valid certificate for another agent\'s key does not verify this agent (wrong agent key)', () => {
    const theirs = issue({ peerId: other.peerId.toString() })
    expect(verifyOrgClaim(subject(theirs, other), 'acme', { roots }).verified).toBe(true)
    expect(verifyOrgClaim(subject(theirs, agent), 'acme', { roots })).toMatchObject({ verified: false, code: 'wrong_agent_key' })
  })

  it.each([
    ['capabilities', { capabilities: ['translate.text', 'summarise', 'payments.send'] }],
    ['agent', { agent: 'ceo' }],
    ['expires', { expires: Date.now() + 700 * day }],
    ['issued', { issued: Date.now() - 1 }],
    ['serial', { serial: '0'.repeat(32) }],
    ['org_key', { org_key: publicKeyToMoltKey(keyObjectToRawPublicKey(rogueKey)) }]
  ])('a certificate with %s changed after signing is refused as forged', (_field, change) => {
    const tampered = { ...issue(), ...change }
    expect(verifyOrgClaim(subject(tampered), 'acme', { roots })).toMatchObject({ verified: false, code: 'forged_signature' })
  })

  it('a certificate moved to another agent (agent_key and peer_id swapped in) is forged, not a wrong key', () => {
    const moved = { ...issue(), agent_key: other.moltKey, peer_id: other.peerId.toString() }
    expect(verifyOrgClaim(subject(moved, other), 'acme', { roots })).toMatchObject({ verified: false, code: 'forged_signature' })
  })

  it('a malformed certificate is a verdict, never an exception', () => {
    for (const bad of [null, 'x', [], { ...issue(), extra: 1 }, { ...issue(), peer_id: other.peerId.toString() }, { ...issue(), capabilities: ['a', 'a'] }]) {
      expect(verifyOrgClaim(subject(bad), 'acme', { roots })).toMatchObject({ verified: false, code: 'invalid_certificate' })
    }
  })

  it('accepts any of several trusted keys of one org (an org rolling its key)', () => {
    const rogueRoot = { name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(rogueKey)) }
    expect(verifyOrgClaim(subject(issue({}, rogueKey)), 'acme', { roots: [...roots, rogueRoot] }).verified).toBe(true)
  })
})

describe('organisation certificates: issuing and decoding', () => {
  it('issue refuses what a verifier would refuse', () => {
    expect(() => issue({ expires: Date.now() - 1 })).toThrow(InvalidCertificateError)
    expect(() => issue({ expires: Date.now() + MAX_CERT_VALIDITY + day })).toThrow(/expires - issued/)
    expect(() => issue({ org: 'not a name' })).toThrow(InvalidCertificateError)
    expect(() => issue({ peerId: 'QmNotAPeer' })).toThrow(/not a valid PeerId/)
  })

  it('decoding bounds size and nesting before parsing, and names the bad field', () => {
    const text = encodeCertificate(issue())
    expect(() => decodeCertificate(text.replace('}', ',"pad":"' + 'x'.repeat(MAX_CERT_BYTES) + '"}'))).toThrow(/byte limit/)
    expect(() => decodeCertificate('['.repeat(5000))).toThrow(/nests deeper/)
    expect(tooDeep('{"a":"[[[[[","b":[1]}', 2)).toBe(false)
    expect(tooDeep('{"a":"[[[[[","b":[[1]]}', 2)).toBe(true)
    expect(() => decodeCertificate(new Uint8Array([0xff, 0xfe]))).toThrow(/UTF-8/)
    expect(() => decodeCertificate('{"v":1')).toThrow(/not JSON/)
    try {
      decodeCertificate(text.replace('"v":1', '"v":2'))
      expect.unreachable()
    } catch (err: any) {
      expect(err).toBeInstanceOf(InvalidCertificateError)
      expect(err.field).toBe('v')
    }
  })
})

describe('the card carries the certificate', () => {
  it('a signed card with a certificate verifies, and the verdict follows from it', () => {
    const cert = issue()
    const card = verifyCard(JSON.parse(JSON.stringify(signCard(cardFields(agent, { cert }), agent.signingKey))), { peerId: agent.peerId.toString() })
    expect(card.cert).toEqual(cert)
    expect(verifyOrgClaim(card, card.org, { roots }).verified).toBe(true)
    // a card claiming another org with the same certificate: shown unverified
    const globex = signCard(cardFields(agent, { org: 'globex', cert }), agent.signingKey)
    expect(verifyOrgClaim(globex, globex.org, { roots })).toMatchObject({ code: 'wrong_org_name' })
  })

  it('a card whose certificate is malformed is refused as an invalid card (field cert)', () => {
    const bad = { ...issue(), capabilities: 'all' } as unknown as OrgCertificate
    expect(() => signCard(cardFields(agent, { cert: bad }), agent.signingKey)).toThrow(InvalidCardError)
  })

  it('the certificate is covered by the card signature: swapping it in breaks the card', () => {
    const card = signCard(cardFields(agent), agent.signingKey)
    expect(() => verifyCard({ ...card, cert: issue() })).toThrow(/invalid signature/)
  })
})

describe('organisation key files', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'molt-org-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('init writes a 0600 key apart from agent keys, never overwrites it, and loads it back', async () => {
    const path = orgKeyPath('acme', dir)
    expect(path).toBe(join(dir, 'org', 'acme.key'))
    const created = await createOrgKey(path, 'acme')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    await expect(createOrgKey(path, 'acme')).rejects.toThrow(/never overwritten/)
    const loaded = await loadOrgKey(path)
    expect(loaded.publicKey).toBe(created.publicKey)
    expect(loaded.name).toBe('acme')
    const cert = issueCertificate({ org: 'acme', agent: 'a', peerId: agent.peerId.toString(), expires: Date.now() + day }, loaded.privateKey)
    expect(verifyOrgClaim(subject(cert), 'acme', { roots: [{ name: 'acme', key: created.publicKey }] }).verified).toBe(true)
    await chmod(path, 0o644)
    await expect(loadOrgKey(path)).rejects.toThrow(/mode 644/)
  })

  it('a passphrase seals the key (scrypt + AES-256-GCM): no plaintext on disk, wrong passphrase refused', async () => {
    const path = orgKeyPath('sealed', dir)
    const created = await createOrgKey(path, 'sealed', { passphrase: 'correct horse' })
    const text = await readFile(path, 'utf8')
    expect(JSON.parse(text).private_key).toBeUndefined()
    expect(JSON.parse(text).encrypted).toMatchObject({ kdf: 'scrypt', cipher: 'aes-256-gcm' })
    await expect(loadOrgKey(path)).rejects.toThrow(/encrypted/)
    await expect(loadOrgKey(path, { passphrase: 'wrong' })).rejects.toThrow(/wrong passphrase/)
    expect((await loadOrgKey(path, { passphrase: 'correct horse' })).publicKey).toBe(created.publicKey)
  })

  it('a corrupt or mismatched key file is refused', async () => {
    const path = join(dir, 'bad.key')
    await writeFile(path, '{', { mode: 0o600 })
    await expect(loadOrgKey(path)).rejects.toThrow(OrgKeyError)
    const good = JSON.parse(await readFile(orgKeyPath('acme', dir), 'utf8'))
    await writeFile(path, JSON.stringify({ ...good, public_key: orgPublic }), { mode: 0o600 })
    await chmod(orgKeyPath('acme', dir), 0o600)
    await expect(loadOrgKey(path)).rejects.toThrow(/does not match/)
    await expect(loadOrgKey(join(dir, 'missing.key'))).rejects.toThrow(/molt org init/)
  })

  it('install-cert stores only a certificate for this agent; loading it back gives the same certificate', async () => {
    const agentDir = join(dir, 'agent')
    expect(await loadInstalledCertificate(agentDir)).toBeUndefined()
    await expect(installCertificate(agentDir, issue(), other.moltKey)).rejects.toThrow(/not for this agent/)
    const cert = issue()
    await installCertificate(agentDir, cert, agent.moltKey)
    expect(await loadInstalledCertificate(agentDir)).toEqual(cert)
    await writeFile(join(agentDir, 'org-cert.json'), '{"v":1,'.repeat(2000))
    await expect(loadInstalledCertificate(agentDir)).rejects.toThrow(InvalidCertificateError)
  })
})

describe('config trust.orgs', () => {
  it('parses { name, key } roots and refuses malformed ones', () => {
    expect(parseConfig({}).trust.orgs).toEqual([])
    expect(parseConfig({ trust: { orgs: roots } }).trust.orgs).toEqual(roots)
    for (const orgs of [{}, [{ name: 'acme' }], [{ name: 'a b', key: orgPublic }], [{ name: 'acme', key: 'ed25519:xyz' }]]) {
      expect(() => parseConfig({ trust: { orgs } })).toThrow(/trust\.orgs/)
    }
  })
})
