/**
 * Issue 21, item 4: recovery of a lost agent key (protocols/identity.md,
 * "Recovery of a lost agent key"). The organisation key is the recovery
 * root: it re-issues the agent's certificate to a new key and revokes the
 * old one; a verifier that trusts the organisation shows the new key
 * verified for it, and the old certificate (and any use of it) not.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { identityFromKey, loadOrCreateKey } from '../../src/identity/index.js'
import { installCertificate, issueCertificate, revokeCertificate, verifyOrgClaim } from '../../src/identity/org/index.js'
import { keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'
import { TestNetwork } from '../support/nodes.js'

const day = 86_400_000
const net = new TestNetwork()
const orgKey = generateKeyPairSync('ed25519').privateKey
const acme = { name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)) }
const libp2p = { connectionManager: { allow: ['/ip4/127.0.0.1'], addressDialTimeout: 30_000 } as any }

afterAll(async () => { await net.cleanup() })

async function agentDir (): Promise<{ dir: string, identity: ReturnType<typeof identityFromKey> }> {
  const dir = await net.dir()
  await writeFile(join(dir, 'config.json'), JSON.stringify({ agent: { name: 'translator', org: 'acme' } }), { mode: 0o600 })
  return { dir, identity: identityFromKey((await loadOrCreateKey(join(dir, 'identity.key'))).key) }
}

describe('recovery of a lost agent key', () => {
  it('the organisation re-issues the certificate to a new key: verified again under the new PeerId, the old certificate revoked', async () => {
    const now = Date.now()
    // the agent as it was: certified, then its data dir (and key) lost
    const old = await agentDir()
    const oldCert = issueCertificate({ org: 'acme', agent: 'translator', peerId: old.identity.peerId.toString(), issued: now, expires: now + 90 * day }, orgKey)
    await installCertificate(old.dir, oldCert, old.identity.moltKey)
    await rm(old.dir, { recursive: true, force: true })

    // 1. a new key  2. acme issues to it  3. installed, the agent restarted  4. the old certificate revoked
    const fresh = await agentDir()
    const newCert = issueCertificate({ org: 'acme', agent: 'translator', peerId: fresh.identity.peerId.toString(), issued: now, expires: now + 90 * day }, orgKey)
    // the old certificate does not fit the new key
    await expect(installCertificate(fresh.dir, oldCert, fresh.identity.moltKey)).rejects.toThrow(/not for this agent/)
    await installCertificate(fresh.dir, newCert, fresh.identity.moltKey)
    const agent = await net.node({ dataDir: fresh.dir, libp2p })
    const verifierDir = await net.dir()
    await writeFile(join(verifierDir, 'config.json'), JSON.stringify({ trust: { orgs: [acme] } }), { mode: 0o600 })
    const verifier = await net.node({ dataDir: verifierDir, libp2p })
    await net.introduce()
    await verifier.trust.publishOrgRevocation(revokeCertificate({ org: 'acme', serial: oldCert.serial, reason: 'key lost' }, orgKey))

    const card = await verifier.card(agent.peerId)
    expect(card.peer_id).toBe(fresh.identity.peerId.toString())
    expect(verifier.libp2p.services.cards.verdict(card)).toMatchObject({ verified: true, code: 'verified', reason: 'verified for acme', serial: newCert.serial })
    // the old certificate: revoked for its own key, and no use on the new one
    const revocations = verifier.trust.orgRevocations()
    expect(verifyOrgClaim({ key: old.identity.moltKey, cert: oldCert }, 'acme', { roots: [acme], revocations })).toMatchObject({ verified: false, code: 'revoked' })
    expect(verifyOrgClaim({ key: fresh.identity.moltKey, cert: oldCert }, 'acme', { roots: [acme], revocations: [] })).toMatchObject({ verified: false, code: 'wrong_agent_key' })
    // a certificate issued by anyone but acme's key cannot stand in for the recovery
    const forged = issueCertificate({ org: 'acme', agent: 'translator', peerId: fresh.identity.peerId.toString(), issued: now, expires: now + 90 * day }, generateKeyPairSync('ed25519').privateKey)
    expect(verifyOrgClaim({ key: fresh.identity.moltKey, cert: forged }, 'acme', { roots: [acme], revocations })).toMatchObject({ verified: false, code: 'forged_signature' })
  }, 120_000)
})
