import { describe, it, expect, afterAll } from 'vitest'
import { mkdtemp, rm, stat, chmod, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { loadOrCreateKey, identityFromKey, didFromPublicKey, publicKeyFromDid } from '../../src/identity/index.js'

const dirs: string[] = []
const tempDir = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'molt-id-')); dirs.push(d); return d }
afterAll(async () => { await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true }))) })

describe('identity key file', () => {
  it('is created with mode 0600 and loads back to the same PeerId', async () => {
    const path = join(await tempDir(), 'identity.key')
    const first = await loadOrCreateKey(path)
    expect(first.created).toBe(true)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const second = await loadOrCreateKey(path)
    expect(second.created).toBe(false)
    expect(identityFromKey(second.key).peerId.toString()).toBe(identityFromKey(first.key).peerId.toString())
  })

  it('refuses a key file readable by others and leaves it untouched', async () => {
    const path = join(await tempDir(), 'identity.key')
    await loadOrCreateKey(path)
    await chmod(path, 0o644)
    const before = await readFile(path, 'utf8')
    await expect(loadOrCreateKey(path)).rejects.toMatchObject({ name: 'IdentityError', message: expect.stringContaining('644') })
    expect(await readFile(path, 'utf8')).toBe(before)
  })

  it('refuses a corrupt key file and never overwrites it', async () => {
    const path = join(await tempDir(), 'identity.key')
    await writeFile(path, 'garbage', { mode: 0o600 })
    await expect(loadOrCreateKey(path)).rejects.toMatchObject({ name: 'IdentityError', message: expect.stringContaining('corrupt') })
    expect(await readFile(path, 'utf8')).toBe('garbage')
    await writeFile(path, JSON.stringify({ version: 1, type: 'Ed25519', privateKey: 'AAAA' }), { mode: 0o600 })
    await expect(loadOrCreateKey(path)).rejects.toMatchObject({ name: 'IdentityError' })
  })
})

describe('identity forms of one key (MoltSpeak reference vector, seed 32×0x01)', () => {
  it('gives the reference PeerId, from.key and did:molt:key', async () => {
    const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(1))
    const id = identityFromKey(key)
    expect(id.moltKey).toBe('ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=')
    expect(id.peerId.toString()).toBe('12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5')
    expect(id.did).toBe('did:molt:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX')
    expect(didFromPublicKey(key.publicKey.raw)).toBe(id.did)
    expect(Buffer.from(publicKeyFromDid(id.did)).toString('base64')).toBe('iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=')
    expect(() => publicKeyFromDid('did:key:z6Mk')).toThrow()
  })
})
