import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { identityFromKey, loadOrCreateKey } from '../../src/identity/index.js'
import { importRevocation, installCertificate, issueCertificate, revokeCertificate } from '../../src/identity/org/index.js'
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
/** trusts acme and holds acme's revocation of A's certificate */
let e: MoltNode

// the node's 1.5 s per-address dial budget (meant for NATed addresses) includes the Noise handshake,
// which a loaded shared test machine can exceed on loopback; the tests are about certificates, not dials
const libp2p = { connectionManager: { allow: ['/ip4/127.0.0.1'], addressDialTimeout: 30_000 } as any }

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
  const eDir = await configured({ trust: { orgs: [acme] } })
  await importRevocation(eDir, revokeCertificate({ org: 'acme', serial: cert.serial, reason: 'key leaked' }, orgKey), [acme])
  const impostor = publicKeyToMoltKey(keyObjectToRawPublicKey(generateKeyPairSync('ed25519').privateKey))
  ;[a, b, c, d, e] = await Promise.all([
    net.node({ dataDir: aDir, libp2p }),
    net.node({ libp2p, dataDir: await configured({ trust: { orgs: [acme] } }) }),
    net.node({ libp2p, dataDir: await configured({}) }),
    net.node({ libp2p, dataDir: await configured({ trust: { orgs: [{ name: 'acme', key: impostor }] } }) }),
    net.node({ libp2p, dataDir: eDir })
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

  it('E, which holds acme\'s revocation of that certificate, sees it revoked while B still sees it verified', async () => {
    const card = await e.card(a.peerId, { force: true })
    expect(e.libp2p.services.cards.verdict(card)).toMatchObject({ verified: false, code: 'revoked' })
    expect(b.libp2p.services.cards.verdict(await b.card(a.peerId)).verified).toBe(true)
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

  it('B flags live messages: from.org acme backed by A\'s card is org_verified, C\'s unbacked claim is not', async () => {
    const entries = new Map<string, any>()
    const listener = (evt: CustomEvent): void => { entries.set(evt.detail.message.id, evt.detail) }
    b.addEventListener('message', listener)
    try {
      await b.card(a.peerId)
      await b.card(c.peerId)
      // speak dispatches before it acknowledges: once send resolves, B's listener has run
      const fromA = await a.send(b.peerId, { op: 'query', p: { domain: 'org' } })
      const fromC = await c.send(b.peerId, { op: 'query', p: { domain: 'org' } })
      expect(entries.get(fromA.id)).toMatchObject({ peer: a.peerId.toString(), org_verified: true })
      expect(entries.get(fromA.id).message.from.org).toBe('acme')
      expect(entries.get(fromC.id)).toMatchObject({ peer: c.peerId.toString(), org_verified: false })
      // without A's card at hand the claim is not taken as fact
      b.libp2p.services.cards.forget(a.peerId)
      const uncarded = await a.send(b.peerId, { op: 'query', p: { domain: 'org' } })
      expect(entries.get(uncarded.id)).toMatchObject({ org_verified: false })
    } finally {
      b.removeEventListener('message', listener)
    }
  })
})
