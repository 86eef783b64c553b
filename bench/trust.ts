import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMoltNode, type MoltNode } from '../src/index.js'
import { identityFromKey, type Identity } from '../src/identity/index.js'
import { signAttestation, verifyAttestation, type Attestation } from '../src/services/trust/index.js'
import { TrustModel, type Signal } from '../src/services/trust/model/index.js'

export interface TrustBenchResult {
  verifyPerSecond: number
  submitPerSecond: number
  propagation: { nodes: number, attestations: number, seconds: number }
  sync: { missed: number, seconds: number }
  scoring: Array<{ attestations: number, buildMs: number, scoreMs: number }>
}

const day = 86_400_000
const sleep = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function identities (n: number): Promise<Identity[]> {
  return Promise.all(Array.from({ length: n }, async () => identityFromKey(await generateKeyPair('Ed25519'))))
}

function records (issuers: Identity[], subjects: Identity[], count: number): Attestation[] {
  const now = Date.now()
  return Array.from({ length: count }, (_, i) => {
    const issuer = issuers[i % issuers.length]
    let subject = subjects[(i * 7 + 3) % subjects.length]
    if (subject === issuer) subject = subjects[(i * 7 + 4) % subjects.length]
    return signAttestation({
      type: 'endorsement', version: '1.0', issued: now - (i % 1000), expires: now + 300 * day,
      issuer: { type: 'agent', key: issuer.moltKey }, subject: { key: subject.moltKey },
      claims: { strength: 'moderate', domain: `d${i % 10}`, context: `bench ${i}` }
    }, issuer.signingKey)
  })
}

/** Trust: validation + store throughput, propagation to N nodes, sync of a late node, score computation */
export async function runTrustBench (options: { nodes: number, attestations: number, missed: number, log: (line: string) => void }): Promise<TrustBenchResult> {
  const { log } = options
  const dirs: string[] = []
  const started: MoltNode[] = []
  const node = async (): Promise<MoltNode> => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-bench-trust-'))
    dirs.push(dir)
    const n = await createMoltNode({
      dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, processMetrics: false,
      // the bench publishes far beyond one issuer's normal rate
      trust: { syncInterval: 0, issuerBurst: 1_000_000, issuerRatePerMinute: 1_000_000 },
      libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
    })
    started.push(n)
    return n
  }
  try {
    const ids = await identities(50)
    const batch = records(ids, ids, Math.max(2000, options.missed))

    let t = performance.now()
    for (const r of batch.slice(0, 2000)) verifyAttestation(r)
    const verifyPerSecond = 2000 / ((performance.now() - t) / 1000)
    log(`trust: verify ${Math.round(verifyPerSecond)}/s`)

    const source = await node()
    t = performance.now()
    for (let i = 0; i < options.missed; i += 500) {
      await Promise.all(batch.slice(i, i + 500).map(async r => source.trust.submit(r)))
    }
    const submitPerSecond = options.missed / ((performance.now() - t) / 1000)
    log(`trust: submit (verify + store + publish) ${Math.round(submitPerSecond)}/s`)

    // a late node that missed `missed` records catches up by sync on connect
    const late = await node()
    t = performance.now()
    await late.libp2p.dial(source.getMultiaddrs()[0])
    while (late.trust.stats().stored < options.missed) await sleep(5)
    const sync = { missed: options.missed, seconds: (performance.now() - t) / 1000 }
    log(`trust: late node synced ${options.missed} in ${sync.seconds.toFixed(2)} s`)
    await Promise.all(started.splice(0).map(async n => n.stop()))

    // propagation: N nodes, each dials 3 others, attestations from 10 publishers
    const nodes: MoltNode[] = []
    for (let i = 0; i < options.nodes; i++) nodes.push(await node())
    for (let i = 0; i < nodes.length; i++) {
      for (const k of [1, 2, 7]) await nodes[i].libp2p.dial(nodes[(i + k) % nodes.length].getMultiaddrs()[0])
    }
    const meshed = (n: MoltNode): number => (n.libp2p.services.pubsub as any).getMeshPeers('molt/trust/1').length
    while (!nodes.every(n => meshed(n) >= 2)) await sleep(50)
    t = performance.now()
    const publishers = nodes.slice(0, 10)
    await Promise.all(publishers.map(async (p, j) => {
      for (let i = j; i < options.attestations; i += publishers.length) {
        await p.trust.attest({ subject: nodes[(i * 3 + 11) % nodes.length].peerId.equals(p.peerId) ? nodes[(i * 3 + 12) % nodes.length].peerId : nodes[(i * 3 + 11) % nodes.length].peerId, type: 'endorsement', context: `p${i}` })
      }
    }))
    while (!nodes.every(n => n.trust.stats().stored >= options.attestations)) await sleep(10)
    const propagation = { nodes: options.nodes, attestations: options.attestations, seconds: (performance.now() - t) / 1000 }
    log(`trust: ${options.attestations} attestations reached all ${options.nodes} nodes in ${propagation.seconds.toFixed(2)} s`)

    // scoring: pure model over K signals among 500 peers
    const scoring: TrustBenchResult['scoring'] = []
    for (const k of [1_000, 10_000, 100_000]) {
      const peers = Array.from({ length: 500 }, (_, i) => `p${i}`)
      const signals: Signal[] = Array.from({ length: k }, (_, i) => ({
        id: i.toString(16).padStart(64, '0'), issuer: peers[i % 500], subject: peers[(i * 31 + 7) % 500],
        type: (i % 10 === 0 ? 'warning' : 'endorsement') as Signal['type'], strength: 'strong', severity: 'medium', issued: Date.now() - (i % 100) * day, expires: Date.now() + 300 * day
      })).filter(s => s.issuer !== s.subject)
      let s = performance.now()
      const model = new TrustModel({ self: 'p0', preTrusted: ['p1', 'p2'], signals })
      const buildMs = performance.now() - s
      s = performance.now()
      for (let i = 0; i < 10; i++) model.score(peers[100 + i])
      scoring.push({ attestations: signals.length, buildMs, scoreMs: (performance.now() - s) / 10 })
      log(`trust: score over ${signals.length} attestations: ${((performance.now() - s) / 10).toFixed(1)} ms`)
    }
    return { verifyPerSecond, submitPerSecond, propagation, sync, scoring }
  } finally {
    await Promise.all(started.map(async n => n.stop().catch(() => {})))
    await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
  }
}
