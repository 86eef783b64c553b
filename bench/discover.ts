/**
 * discover() latency over the private DHT at 12, 50 and 100 nodes on
 * 127.0.0.1. Nodes run in host processes of ≤ 25 each; half of them offer a
 * capability of their own (`bench.node<i>`), the other half none. A seeker in
 * this process looks up capabilities that exactly one random offering node
 * offers, DHT only (no local shortcut), and the time includes fetching and
 * verifying the card.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { createMoltNode, type MoltNode } from '../src/index.js'
import { summarize } from './stats.js'

const PER_HOST = 25

export interface DiscoverBenchResult {
  nodes: number
  /** nodes offering a capability (the others offer none) */
  offering: number
  lookups: number
  found: number
  p50: number
  p99: number
  /** the DHT walk: discover() called → first provider record in hand (found lookups) */
  walk: { p50: number, p99: number }
  /** the rest: dialling the provider and fetching and verifying its card */
  card: { p50: number, p99: number }
}

export async function runDiscoverBench (options: { sizes: number[], lookups: number, log: (line: string) => void }): Promise<DiscoverBenchResult[]> {
  const results: DiscoverBenchResult[] = []
  for (const size of options.sizes) results.push(await runOne(size, options.lookups, options.log))
  return results
}

async function runOne (size: number, lookups: number, log: (line: string) => void): Promise<DiscoverBenchResult> {
  const here = dirname(fileURLToPath(import.meta.url))
  const root = await mkdtemp(join(tmpdir(), 'molt-bench-discover-'))
  const hosts: ChildProcess[] = []
  const own: MoltNode[] = []
  try {
    const make = async (name: string, bootstrap: string[]): Promise<MoltNode> => {
      const node = await createMoltNode({
        dataDir: join(root, name), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, heartbeatInterval: 0,
        agent: { name, capabilities: [] }, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } as any }
      })
      own.push(node)
      return node
    }
    const boot = await make('boot', [])
    const bootstrap = [boot.getMultiaddrs()[0].toString()]
    const start = performance.now()
    const offering = Math.ceil((size - 2) / 2)
    for (let first = 0; first < size - 2; first += PER_HOST) {
      const count = Math.min(PER_HOST, size - 2 - first)
      const child = spawn(process.execPath, [join(here, 'dht-host.js'), JSON.stringify({ count, first, bootstrap, offering })], { stdio: ['pipe', 'pipe', 'inherit'] })
      hosts.push(child)
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout! }).once('line', () => { resolve() })
        child.once('exit', (code) => { reject(new Error(`dht host exited with ${code}`)) })
      })
    }
    const seeker = await make('seeker', bootstrap)
    log(`  ${size} nodes up in ${((performance.now() - start) / 1000).toFixed(1)} s; letting routing tables fill`)
    await new Promise(resolve => setTimeout(resolve, 5000))

    // when discover()'s DHT walk yields its first provider: splits each lookup into walk and card fetch
    const routing = seeker.libp2p.contentRouting as { findProviders: (...args: any[]) => AsyncIterable<unknown> }
    const findProviders = routing.findProviders.bind(routing)
    let firstProvider: number | undefined
    routing.findProviders = async function * (...args: any[]) {
      for await (const provider of findProviders(...args)) {
        firstProvider ??= performance.now()
        yield provider
      }
    }
    const samples: number[] = []
    const walks: number[] = []
    const cards: number[] = []
    let found = 0
    for (let i = 0; i < lookups; i++) {
      const target = Math.floor(Math.random() * offering)
      firstProvider = undefined
      const t = performance.now()
      const agents = await seeker.discover(`bench.node${target}`, { limit: 1, local: false, signal: AbortSignal.timeout(15_000) }).catch(() => [])
      const end = performance.now()
      samples.push(end - t)
      if (agents.length > 0) found++
      if (agents.length > 0 && firstProvider != null) {
        walks.push(firstProvider - t)
        cards.push(end - firstProvider)
      } else {
        log(`  bench.node${target} not found after ${(end - t).toFixed(0)} ms (${firstProvider == null ? 'the walk found no provider' : `a provider after ${(firstProvider - t).toFixed(0)} ms, no card`})`)
      }
    }
    const { p50, p99 } = summarize(samples)
    const walk = summarize(walks)
    const card = summarize(cards)
    log(`  ${size} nodes (${offering} offering): discover p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, found ${found}/${lookups}; ` +
      `walk to the first provider p50 ${walk.p50.toFixed(1)} ms, p99 ${walk.p99.toFixed(1)} ms; dial + card p50 ${card.p50.toFixed(1)} ms, p99 ${card.p99.toFixed(1)} ms`)
    return { nodes: size, offering, lookups, found, p50, p99, walk: { p50: walk.p50, p99: walk.p99 }, card: { p50: card.p50, p99: card.p99 } }
  } finally {
    for (const host of hosts) host.stdin?.end()
    await Promise.allSettled(own.map(async n => n.stop()))
    await Promise.all(hosts.map(async host => new Promise(resolve => { if (host.exitCode != null) resolve(null); else host.once('exit', resolve) })))
    await rm(root, { recursive: true, force: true })
  }
}
