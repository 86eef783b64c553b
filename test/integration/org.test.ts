import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { identityFromKey, loadOrCreateKey } from '../../src/identity/index.js'
import { installCertificate, issueCertificate } from '../../src/identity/org/index.js'
import { keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'
import type { MoltNode } from '../../src/index.js'
import { TestNetwork } from '../support/nodes.js'

const day = 86_400_000
const net = new TestNetwork()
const orgKey = generateKeyPairSync('ed25519').privateKey
const acme = { name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)) }
let a: MoltNode
/** trusts acme */
let b: MoltNode
/** trusts nobody */
let c: MoltNode
/** trusts another key under the name acme */
let d: MoltNode

async function configured (config: object): Promise<string> {
  const dir = await net.dir()
  await writeFile(join(dir, 'config.json'), JSON.stringify(config), { mode: 0o600 })
  return dir
}

beforeAll(async () => {
  // A: its key first, so acme can issue it a certificate before it starts
  const aDir = await configured({ agent: { name: 'translator', org: 'acme', capabilities: ['translate.text'] } })
  const { key } = await loadOrCreateKey(join(aDir, 'identity.key'))
  const identity = identityFromKey(key)
  const now = Date.now()
  const cert = issueCertificate({ org: 'acme', agent: 'translator', peerId: identity.peerId.toString(), capabilities: ['translate.text'], issued: now, expires: now + 90 * day }, orgKey)
  await installCertificate(aDir, cert, identity.moltKey)
  const impostor = publicKeyToMoltKey(keyObjectToRawPublicKey(generateKeyPairSync('ed25519').privateKey))
  ;[a, b, c, d] = await Promise.all([
    net.node({ dataDir: aDir }),
    net.node({ dataDir: await configured({ trust: { orgs: [acme] } }) }),
    net.node({ dataDir: await configured({}) }),
    net.node({ dataDir: await configured({ trust: { orgs: [{ name: 'acme', key: impostor }] } }) })
  ])
  await net.introduce()
}, 60_000)

afterAll(async () => {
  await net.cleanup()
})

describe('organisation certificates between real nodes', () => {
  it('A\'s card carries its certificate, and B, which trusts acme, sees A verified for acme', async () => {
    const card = await b.card(a.peerId, { force: true })
    expect(card.cert).toMatchObject({ org: 'acme', agent: 'translator', peer_id: a.peerId.toString() })
    expect(b.libp2p.services.cards.verdict(card)).toMatchObject({ verified: true, code: 'verified', reason: 'verified for acme', capabilities: ['translate.text'] })
    // the card came over the wire: the certificate is A's, signed by acme, and covered by A's card signature
    expect(card).not.toBe(a.ownCard())
  })

  it('C, which trusts no organisation, shows the same claim as unverified: unknown org', async () => {
    const card = await c.card(a.peerId, { force: true })
    expect(c.libp2p.services.cards.verdict(card)).toMatchObject({ verified: false, code: 'unknown_org' })
  })

  it('D, which trusts another key under the name acme, sees a forged signature', async () => {
    const card = await d.card(a.peerId, { force: true })
    expect(d.libp2p.services.cards.verdict(card)).toMatchObject({ verified: false, code: 'forged_signature' })
  })

  it('B checks a message\'s from.org against the sender\'s card: acme holds, another org does not', async () => {
    const card = await b.card(a.peerId)
    expect(b.libp2p.services.cards.verdict(card, 'acme').verified).toBe(true)
    expect(b.libp2p.services.cards.verdict(card, 'globex')).toMatchObject({ verified: false, code: 'wrong_org_name' })
    // C's card carries no certificate: its org claim is never a fact at B
    const plain = await b.card(c.peerId)
    expect(plain.cert).toBeUndefined()
    expect(b.libp2p.services.cards.verdict(plain)).toMatchObject({ verified: false, code: 'no_certificate' })
  })
})
