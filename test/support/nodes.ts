import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoltNode, type MoltNode, type MoltNodeOptions } from '../../src/index.js'

/** Nodes on 127.0.0.1 only, each with its own temp data dir; `cleanup()` stops them and removes the dirs */
export class TestNetwork {
  readonly nodes: MoltNode[] = []
  private readonly dirs: string[] = []

  async node (options: MoltNodeOptions = {}): Promise<MoltNode> {
    const dataDir = options.dataDir ?? await this.dir()
    const node = await createMoltNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      ...options,
      dataDir,
      libp2p: {
        connectionManager: {
          allow: ['/ip4/127.0.0.1'],
          // deadlines, not speed requirements: on a loaded 2-core box a Noise handshake can take
          // longer than libp2p's 6–10 s defaults (meant for real networks), and every dial here is local
          dialTimeout: 30_000,
          addressDialTimeout: 30_000,
          inboundUpgradeTimeout: 30_000
        } as any,
        ...options.libp2p
      }
    })
    this.nodes.push(node)
    return node
  }

  /** Teach every node every other node's addresses, so a PeerId alone is enough to reach it */
  async introduce (): Promise<void> {
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a !== b) await a.libp2p.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
      }
    }
  }

  async dir (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'molt-test-'))
    this.dirs.push(dir)
    return dir
  }

  async cleanup (): Promise<void> {
    await Promise.all(this.nodes.map(async node => node.stop().catch(() => {})))
    await Promise.all(this.dirs.map(async dir => rm(dir, { recursive: true, force: true })))
  }
}

/** The first TCP multiaddr of a node, with /p2p/<id> */
export function addressOf (node: MoltNode): string {
  const addr = node.getMultiaddrs().find(ma => ma.toString().includes('/tcp/') && !ma.toString().includes('/ws'))
  if (addr == null) throw new Error('node has no TCP address')
  return addr.toString()
}

/** A TCP port on 127.0.0.1 free right now (to restart a node on the same address) */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}
