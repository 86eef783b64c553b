/**
 * Issue 21, item 2: an organisation's certificate revocation spreads over
 * gossipsub (molt/org-revocation/1) and trust-sync. 20 real nodes on
 * 127.0.0.1 in a sparse mesh, all trusting acme and configured to refuse
 * revoked agents (`trust.revokedAgents: "refuse"`); acme's agent A among them.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { identityFromKey, loadOrCreateKey } from '../../src/identity/index.js'
import { canonicalize, keyObjectToRawPublicKey, publicKeyToMoltKey } from '../../src/moltspeak/index.js'
import { installCertificate, issueCertificate, revokeCertificate, type OrgCertificate } from '../../src/identity/org/index.js'
import { ORG_REVOCATION_TOPIC } from '../../src/services/trust/constants.js'
import type { AgentCard, MoltNode } from '../../src/index.js'
import { TestNetwork } from '../support/nodes.js'
import { eventually } from '../support/eventually.js'

const N = 20
const day = 86_400_000
/** How long a wait for an event may take before the test gives up (a deadline, not an assertion) */
const DEADLINE = 120_000
const net = new TestNetwork()
const nodes: MoltNode[] = []
/** A's card, as every node judges it */
let card: AgentCard
const orgKey = generateKeyPairSync('ed25519').privateKey
const acme = { name: 'acme', key: publicKeyToMoltKey(keyObjectToRawPublicKey(orgKey)) }
let cert: OrgCertificate
/*
 * No background sync: what reaches the 20 nodes comes by gossip (the late joiner below
 * isolates sync). libp2p's connection monitor is off: on a loaded shared 2-core machine its
 * pings time out and it aborts healthy loopback connections (the base code does the same),
 * which cuts this one-process network into pieces; what is tested is the revocation, not pings.
 * No DHT either: its routing-table upkeep on every new connection was most of the set-up's CPU,
 * and nothing here is looked up (the DHT over TCP + Noise is dht.test.ts's subject).
 */
const options = { heartbeatInterval: 0, trust: { syncInterval: 0 }, dht: { enabled: false }, libp2p: { connectionMonitor: { enabled: false } } as any }
const pubsub = (n: MoltNode): any => n.libp2p.services.pubsub
const verdictAt = (i: number): string => nodes[i].libp2p.services.cards.verdict(card).code
const rejected = (n: MoltNode, name: string): number => n.trust.stats().rejected[name] ?? 0

/** Name the setup step that failed (a bare TimeoutError says nothing) */
async function step<T> (what: string, task: () => Promise<T>): Promise<T> {
  try {
    return await task()
  } catch (err: any) {
    throw new Error(`${what}: ${err.name as string} ${err.message as string}`)
  }
}

async function configured (config: object): Promise<string> {
  const dir = await net.dir()
  await writeFile(join(dir, 'config.json'), JSON.stringify(config), { mode: 0o600 })
  return dir
}

beforeAll(async () => {
  const aDir = await configured({ agent: { name: 'translator', org: 'acme' }, trust: { orgs: [acme] } })
  const identity = identityFromKey((await loadOrCreateKey(join(aDir, 'identity.key'))).key)
  const now = Date.now()
  cert = issueCertificate({ org: 'acme', agent: 'translator', peerId: identity.peerId.toString(), issued: now, expires: now + 30 * day }, orgKey)
  await installCertificate(aDir, cert, identity.moltKey)
  nodes.push(await net.node({ ...options, dataDir: aDir }))
  for (let i = 1; i < N; i++) nodes.push(await net.node({ ...options, dataDir: await configured({ trust: { orgs: [acme], revokedAgents: 'refuse' } }) }))
  // a sparse mesh: each node dials 3 others, one round of dials at a time (all of a round at once:
  // on a loaded machine sequential dials spend most of their time waiting for each other's turn)
  for (const k of [1, 2, 7]) await step(`dial round ${k}`, async () => Promise.all(nodes.map(async (n, i) => n.libp2p.dial(nodes[(i + k) % N].getMultiaddrs()[0]))))
  await net.introduce()
  await eventually(() => nodes.every(n => pubsub(n).getMeshPeers(ORG_REVOCATION_TOPIC).length >= 2), DEADLINE, 'every node in the revocation mesh')
    .catch((err: Error) => {
      throw new Error(`${err.message}: mesh sizes ${nodes.map(n => pubsub(n).getMeshPeers(ORG_REVOCATION_TOPIC).length).join(',')}, trust topic ${nodes.map(n => pubsub(n).getMeshPeers('molt/trust/1').length).join(',')}, connections ${nodes.map(n => n.libp2p.getConnections().length).join(',')}, subscribers ${nodes.map(n => pubsub(n).getSubscribers(ORG_REVOCATION_TOPIC).length).join(',')}`)
    })
  // what every node judges is A's signed card (fetching it over the wire is tested in org.test.ts);
  // node 3, which receives A's messages, holds it the usual way, from the card protocol
  card = nodes[0].ownCard()
  // every node holds A's card the usual way, from the card protocol: what refusing a revoked agent judges
  // one at a time: A accepts a few new inbound connections per second from one address (libp2p's inbound threshold)
  for (let i = 1; i < N; i++) await step(`node ${i} fetches A's card`, async () => nodes[i].card(nodes[0].peerId))
  // starting 20 nodes is seconds of CPU: a deadline for a busy machine, not a speed requirement
}, 600_000)
afterAll(async () => { await net.cleanup() })

describe(`organisation revocations over gossipsub and trust-sync, ${N} nodes`, { timeout: 180_000 }, () => {
  it('one revocation published at one node: every node then shows the certificate revoked and refuses A\'s messages', async () => {
    for (let i = 1; i < N; i++) expect(verdictAt(i)).toBe('verified')
    const entries = new Map<string, any>()
    const listener = (evt: CustomEvent): void => { entries.set(evt.detail.message.id, evt.detail) }
    nodes[3].addEventListener('message', listener)
    try {
      const before = await nodes[0].send(nodes[3].peerId, { op: 'query', p: { domain: 'org' } })
      expect(entries.get(before.id)).toMatchObject({ org_verified: true })

      const revocation = revokeCertificate({ org: 'acme', serial: cert.serial, reason: 'key leaked' }, orgKey)
      const kept = await nodes[11 % N].trust.publishOrgRevocation(revocation)
      expect(kept).toMatchObject({ trusted: true })
      await eventually(() => nodes.every(n => n.trust.orgRevocations().some(r => r.serial === cert.serial)), DEADLINE, 'the revocation at every node')
        .catch((err: Error) => {
          throw new Error(`${err.message}: held ${nodes.map(n => n.trust.orgRevocations().length).join(',')}; mesh ${nodes.map(n => pubsub(n).getMeshPeers(ORG_REVOCATION_TOPIC).length).join(',')}; rejected ${nodes.map(n => JSON.stringify(n.trust.stats().rejected)).join(' ')}`)
        })
      for (let i = 1; i < N; i++) expect(verdictAt(i)).toBe('revoked')

      // refused, not only flagged, by every node (trust.revokedAgents "refuse"): E_AUTH_FAILED, nothing dispatched
      const count = entries.size
      const refusals = await Promise.all(nodes.slice(1).map(async n => nodes[0].send(n.peerId, { op: 'query', p: { domain: 'org' } }, { delivery: 'best-effort' }).then(() => 'delivered', (err: any) => err.code)))
      expect(refusals).toEqual(Array(N - 1).fill('E_AUTH_FAILED'))
      expect(entries.size).toBe(count)
    } finally {
      nodes[3].removeEventListener('message', listener)
    }
  })

  it('a node that was offline when it was published gets it by trust-sync', async () => {
    // on a revocation topic nobody publishes to: what it holds came by the sync it starts when it connects
    const late = await net.node({ ...options, trust: { ...options.trust, orgRevocationTopic: 'molt/org-revocation/late-joiner-test' }, dataDir: await configured({ trust: { orgs: [acme] } }) })
    await late.libp2p.dial(nodes[5].getMultiaddrs()[0])
    // held once the session's batch is stored; counted as synced once the session ends
    await eventually(() => late.trust.orgRevocations().some(r => r.serial === cert.serial) && late.trust.stats().synced >= 1, DEADLINE, 'the late node caught up by sync')
    expect(late.libp2p.services.cards.verdict(card)).toMatchObject({ verified: false, code: 'revoked' })
    // its config keeps the default, trust.revokedAgents "flag": A's messages are accepted, flagged org_verified false
    await late.libp2p.peerStore.merge(nodes[0].peerId, { multiaddrs: nodes[0].getMultiaddrs() })
    await late.card(nodes[0].peerId)
    const entries = new Map<string, any>()
    const listener = (evt: CustomEvent): void => { entries.set(evt.detail.message.id, evt.detail) }
    late.addEventListener('message', listener)
    try {
      const sent = await nodes[0].send(late.getMultiaddrs()[0], { op: 'query', p: { domain: 'org' } })
      expect(entries.get(sent.id)).toMatchObject({ org_verified: false })
      expect(entries.get(sent.id).message.from.org).toBe('acme')
    } finally {
      late.removeEventListener('message', listener)
    }
  })

  describe('forged revocations (acme\'s name, another key)', () => {
    const wrongKey = generateKeyPairSync('ed25519').privateKey
    let attacker: MoltNode
    let victimCert: OrgCertificate
    let forged: ReturnType<typeof revokeCertificate>
    const neighbours = (): MoltNode[] => [nodes[1], nodes[9 % N], nodes[17 % N]]

    beforeAll(async () => {
      // a second acme agent whose certificate the forger wants withdrawn
      const now = Date.now()
      victimCert = issueCertificate({ org: 'acme', agent: 'victim', peerId: nodes[2].peerId.toString(), issued: now, expires: now + 30 * day }, orgKey)
      forged = revokeCertificate({ org: 'acme', serial: victimCert.serial }, wrongKey)
      // the attacker trusts no organisation: to it the forgery is a well-signed revocation of an org it does not know
      attacker = await net.node(options)
      for (const n of neighbours()) await attacker.libp2p.dial(n.getMultiaddrs()[0])
      const subscribed = (a: MoltNode, b: MoltNode): boolean => pubsub(a).getSubscribers(ORG_REVOCATION_TOPIC).some((p: any) => p.equals(b.peerId))
      await eventually(() => neighbours().every(n => subscribed(n, attacker) && subscribed(attacker, n)), DEADLINE, 'attacker subscribed')
    }, 120_000)

    it('every node refuses it from its API', async () => {
      for (const n of nodes) {
        await expect(n.trust.publishOrgRevocation(forged)).rejects.toMatchObject({ name: 'RevocationSignatureError' })
      }
    })

    it('published on gossip it is rejected by the neighbours, penalised, and held by nobody', async () => {
      const before = neighbours().map(n => rejected(n, 'RevocationSignatureError'))
      await pubsub(attacker).publish(ORG_REVOCATION_TOPIC, new TextEncoder().encode(canonicalize(forged)))
      await eventually(() => neighbours().every((n, i) => rejected(n, 'RevocationSignatureError') > before[i]), DEADLINE, 'every neighbour refused it')
      await eventually(() => neighbours().every(n => n.trust.gossipScore(attacker.peerId) < 0), DEADLINE, 'attacker penalised')
      expect(nodes.some(n => n.trust.orgRevocations().some(r => r.serial === victimCert.serial))).toBe(false)
    })

    it('offered by sync it fails the session and is not kept', async () => {
      // the attacker carries it (an org it does not trust: kept in its bounded space, like any unknown org's)
      expect((await attacker.trust.publishOrgRevocation(forged)).trusted).toBe(false)
      const puller = nodes[10 % N]
      await puller.libp2p.dial(attacker.getMultiaddrs()[0])
      await expect(puller.trust.sync(attacker.peerId)).rejects.toMatchObject({ name: 'RevocationSignatureError' })
      expect(puller.trust.orgRevocations().some(r => r.serial === victimCert.serial)).toBe(false)
      expect(nodes.some(n => n.trust.orgRevocations().some(r => r.serial === victimCert.serial))).toBe(false)
    })
  })
})
