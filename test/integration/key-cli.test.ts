/**
 * `molt key rotate` (exit codes, with and without a running agent) and
 * `molt card <peer>`'s verdict reading every revocation the agent holds
 * (protocols/identity.md, "Key rotation", "Trust roots")
 */
import { describe, it, expect, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CliSandbox } from '../support/cli.js'
import { TestNetwork, addressOf } from '../support/nodes.js'
import { identityFromKey, loadOrCreateKey } from '../../src/identity/index.js'
import { installCertificate, issueCertificate, revokeCertificate } from '../../src/identity/org/index.js'
import { keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'
import { ApiClient, loadApiToken } from '../../src/api/index.js'

const sandbox = new CliSandbox()
const net = new TestNetwork()
/** Harness budget: each CLI run may start a Node process or a node (seconds on a loaded machine); nothing asserts speed */
const SLOW = 180_000

afterAll(async () => {
  await sandbox.cleanup()
  await net.cleanup()
})

describe('molt key rotate', () => {
  it('exits 2 on a bad command line and 1 without a key, changing nothing', async () => {
    const dir = await sandbox.dir()
    for (const [args, message] of [[['key'], /needs a subcommand/], [['key', 'frob'], /unknown subcommand/], [['key', 'rotate', 'x'], /no arguments/]] as const) {
      const { code, stderr } = await sandbox.call([...args, '--data-dir', dir])
      expect({ args, code }).toEqual({ args, code: 2 })
      expect(stderr).toMatch(message)
    }
    const none = await sandbox.call(['key', 'rotate', '--data-dir', dir])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/no agent key/)
    expect(await readdir(dir)).toEqual([])
  }, SLOW)

  it('without an agent running: switches the data dir, keeps the old key 0600, exit 0', async () => {
    const dir = await sandbox.dir()
    const old = JSON.parse((await sandbox.call(['init', '--json', '--data-dir', dir])).stdout).peerId
    const { code, stdout } = await sandbox.call(['key', 'rotate', '--json', '--data-dir', dir])
    expect(code).toBe(0)
    const result = JSON.parse(stdout)
    expect(result).toMatchObject({ oldPeerId: old, published: false, rotation: { seq: 1, type: 'molt-key-rotation' } })
    expect(result.newPeerId).not.toBe(old)
    expect(JSON.stringify(result)).not.toMatch(/privateKey|newKey/)
    expect((await stat(result.retiredKeyPath)).mode & 0o777).toBe(0o600)
    expect(JSON.parse((await sandbox.call(['id', '--json', '--data-dir', dir])).stdout).peerId).toBe(result.newPeerId)
    const again = JSON.parse((await sandbox.call(['key', 'rotate', '--json', '--data-dir', dir])).stdout)
    expect(again).toMatchObject({ oldPeerId: result.newPeerId, rotation: { seq: 2 } })
  }, SLOW)

  it('with the agent running: it publishes the statement (exit 0); rotating again before its restart exits 1', async () => {
    const dir = await sandbox.dir()
    await sandbox.call(['init', '--data-dir', dir])
    const agent = await sandbox.agent(dir)
    try {
      const { code, stdout, stderr } = await sandbox.run(['key', 'rotate', '--json', '--data-dir', dir])
      expect(stderr).toBe('')
      expect(code).toBe(0)
      const result = JSON.parse(stdout)
      expect(result).toMatchObject({ oldPeerId: agent.listening.peerId, published: true, restartRequired: true })
      // the API behind it: the statement is held; a forged one is refused with E_SIGNATURE
      const client = new ApiClient({ url: `http://127.0.0.1:${agent.listening.apiPort}`, token: await loadApiToken(dir) as string })
      const held = await client.key<{ rotations: any[] }>('GET', '/rotations')
      expect(held.rotations.map(r => r.rotation)).toEqual([result.rotation])
      const forged = { ...result.rotation, new_key: result.rotation.old_key.replace(/^ed25519:./, 'ed25519:A') }
      await expect(client.key('POST', '/rotations', { rotation: { ...result.rotation, sig_new: result.rotation.sig_old } })).rejects.toMatchObject({ status: 400, code: 'E_SIGNATURE' })
      await expect(client.key('POST', '/rotations', { rotation: forged })).rejects.toMatchObject({ status: 400 })
      const second = await sandbox.run(['key', 'rotate', '--data-dir', dir])
      expect(second.code).toBe(1)
      expect(second.stderr).toMatch(/restart the agent/)
      expect(JSON.parse((await sandbox.call(['id', '--json', '--data-dir', dir])).stdout).peerId).toBe(result.newPeerId)
    } finally {
      await agent.stop()
    }
  }, SLOW)
})

describe('molt card <peer> verdict', () => {
  it('reads the revocations the agent received over the network (its store), not only org-revocations.json', async () => {
    const orgKey = generateKeyPairSync('ed25519').privateKey
    const acme = { name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)) }
    const aDir = await net.dir()
    await writeFile(join(aDir, 'config.json'), JSON.stringify({ agent: { name: 'translator', org: 'acme' } }), { mode: 0o600 })
    const identity = identityFromKey((await loadOrCreateKey(join(aDir, 'identity.key'))).key)
    const now = Date.now()
    const cert = issueCertificate({ org: 'acme', agent: 'translator', peerId: identity.peerId.toString(), issued: now, expires: now + 86_400_000 }, orgKey)
    await installCertificate(aDir, cert, identity.moltKey)
    const agent = await net.node({ dataDir: aDir })

    const verifierDir = await sandbox.dir()
    await writeFile(join(verifierDir, 'config.json'), JSON.stringify({ trust: { orgs: [acme] }, listen: ['/ip4/127.0.0.1/tcp/0'] }), { mode: 0o600 })
    const verified = await sandbox.call(['card', addressOf(agent), '--json', '--data-dir', verifierDir])
    expect(verified.code).toBe(0)
    expect(JSON.parse(verified.stdout).org_verdict).toMatchObject({ verified: true, reason: 'verified for acme' })

    // the verifier's agent receives the revocation as it would over gossip: kept in its store, not in org-revocations.json
    const verifier = await net.node({ dataDir: verifierDir })
    await verifier.trust.publishOrgRevocation(revokeCertificate({ org: 'acme', serial: cert.serial }, orgKey))
    await verifier.stop()
    expect(await readdir(verifierDir)).not.toContain('org-revocations.json')
    const revoked = await sandbox.call(['card', addressOf(agent), '--json', '--data-dir', verifierDir])
    expect(revoked.code).toBe(0)
    expect(JSON.parse(revoked.stdout).org_verdict).toMatchObject({ verified: false, code: 'revoked' })
    expect(revoked.stdout).toMatch(/revoked by acme/)
  }, SLOW)
})
