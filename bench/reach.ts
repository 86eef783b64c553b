/**
 * Reaching a never-met agent by PeerId alone (protocols/routing.md), on
 * 127.0.0.1 in one process: relays R1 and R2 (R2 bootstrapped from R1); each
 * cold run starts a fresh recipient B that listens nowhere and reserves on R2
 * (it publishes its routing record), and a fresh sender A that knows only R1.
 * Measured: `request(B's PeerId string)` → the reply, which takes A's DHT
 * lookup of B's record, the dial of R2 and the circuit to B. Then mailbox
 * delivery: B goes offline, A's send is `stored` at R2, B restarts — the time
 * from B's start to the message in its inbox.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, type MoltNode, type MoltNodeOptions } from '../src/index.js'
import { createRelayNode, type RelayNode } from '../src/relay/index.js'
import { summarize } from './stats.js'

export interface ReachBenchResult {
  cold: { runs: number, p50: number, p99: number, relayed: number, failed: number }
  /** Baseline in the same run: a fresh sender given B's circuit address by hand (no DHT lookup) */
  byAddress: { runs: number, p50: number, p99: number }
  mailbox: { runs: number, p50: number, p99: number }
}

const loopback = { connectionManager: { allow: ['/ip4/127.0.0.1'], inboundConnectionThreshold: 1000 } as any }

export async function runReachBench (options: { runs: number, mailboxRuns: number, log: (line: string) => void }): Promise<ReachBenchResult> {
  const dirs: string[] = []
  const dir = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'molt-bench-reach-')); dirs.push(d); return d }
  const relays: RelayNode[] = []
  const nodes = new Set<MoltNode>()
  const agent = async (relay: RelayNode, more: MoltNodeOptions = {}): Promise<MoltNode> => {
    const node = await createMoltNode({ dataDir: await dir(), listen: [], relays: [relay.getMultiaddrs()[0].toString()], heartbeatInterval: 0, processMetrics: false, libp2p: loopback, ...more })
    nodes.add(node)
    return node
  }
  const stop = async (node: MoltNode): Promise<void> => { nodes.delete(node); await node.stop() }
  try {
    const relay = async (bootstrap: string[]): Promise<RelayNode> => {
      const r = await createRelayNode({ dataDir: await dir(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, trust: false, libp2p: loopback })
      relays.push(r)
      return r
    }
    const r1 = await relay([])
    const r2 = await relay([r1.getMultiaddrs()[0].toString()])

    /** A fresh recipient on R2 whose record reached both relays */
    const recipient = async (more: MoltNodeOptions = {}): Promise<MoltNode> => {
      const b = await agent(r2, more)
      b.handle('query', () => ({ status: 'success' }))
      const deadline = Date.now() + 30_000
      while ((await b.libp2p.services.routes.publish()) < 2) {
        if (Date.now() > deadline) throw new Error('the recipient\'s record reached fewer than 2 DHT servers')
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      return b
    }
    /** A fresh sender on R1, connected to its relay (DHT ready) */
    const sender = async (): Promise<MoltNode> => {
      const a = await agent(r1)
      const deadline = Date.now() + 30_000
      while (a.libp2p.getConnections(r1.peerId).length === 0 || ((a.libp2p.services.dht as any)?.routingTable?.size ?? 0) === 0) {
        if (Date.now() > deadline) throw new Error('the sender never joined the DHT')
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      return a
    }

    const cold: number[] = []
    const byAddress: number[] = []
    let relayed = 0
    let failed = 0
    for (let i = 0; i < options.runs; i++) {
      // a run that fails (a timeout on a loaded machine) is counted, not fatal: the figures say how many were delivered
      const b = await recipient()
      const a = await sender()
      const a2 = await sender()
      try {
        const started = performance.now()
        await a.request(b.peerId.toString(), { op: 'query', p: { domain: 'reach' } }, { timeout: 30_000 })
        cold.push(performance.now() - started)
        if (a.libp2p.getConnections(b.peerId).every(c => c.remoteAddr.toString().includes('/p2p-circuit'))) relayed++
        // the baseline: another fresh sender, given the circuit address copied by hand
        const circuit = b.getMultiaddrs().map(String).find(addr => addr.includes('/p2p-circuit'))
        const baseStarted = performance.now()
        await a2.request(circuit!, { op: 'query', p: { domain: 'reach' } }, { timeout: 30_000 })
        byAddress.push(performance.now() - baseStarted)
        options.log(`  cold run ${i + 1}/${options.runs}: by PeerId ${cold[cold.length - 1].toFixed(1)} ms, by circuit address ${byAddress[byAddress.length - 1].toFixed(1)} ms`)
      } catch (err: any) {
        failed++
        options.log(`  cold run ${i + 1}/${options.runs} failed: ${err.message}`)
      } finally {
        await Promise.all([stop(a), stop(a2), stop(b)])
      }
    }

    const mailbox: number[] = []
    for (let i = 0; i < options.mailboxRuns; i++) {
      const bDir = await dir()
      let b = await recipient({ dataDir: bDir })
      const a = await sender()
      await b.stop()
      nodes.delete(b)
      const sent = await a.send(b.peerId.toString(), { op: 'query', p: { domain: 'mailbox', n: i } })
      if (sent.status !== 'stored') throw new Error(`expected stored, got ${sent.status} (${sent.lastError ?? ''})`)
      const started = performance.now()
      b = await agent(r2, { dataDir: bDir })
      const deadline = Date.now() + 60_000
      while (!(await b.inbox()).some(e => e.message.id === sent.id)) {
        if (Date.now() > deadline) throw new Error('the stored message never reached the inbox')
        await new Promise(resolve => setTimeout(resolve, 10))
      }
      mailbox.push(performance.now() - started)
      await Promise.all([stop(a), stop(b)])
      options.log(`  mailbox run ${i + 1}/${options.mailboxRuns}: ${mailbox[mailbox.length - 1].toFixed(1)} ms`)
    }
    const c = summarize(cold)
    const base = summarize(byAddress)
    const m = summarize(mailbox)
    return {
      cold: { runs: cold.length, p50: c.p50, p99: c.p99, relayed, failed },
      byAddress: { runs: byAddress.length, p50: base.p50, p99: base.p99 },
      mailbox: { runs: mailbox.length, p50: m.p50, p99: m.p99 }
    }
  } finally {
    await Promise.allSettled([...nodes].map(async n => n.stop()))
    await Promise.allSettled(relays.map(async r => r.stop({ drainMs: 0 })))
    await Promise.allSettled(dirs.map(async d => rm(d, { recursive: true, force: true })))
  }
}
