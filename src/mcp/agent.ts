import { applyEnv } from '../config/env.js'
import { loadConfig } from '../config/index.js'
import { createMoltNode } from '../node.js'
import {
  ApiClient, connectToRunningAgent, loadOrCreateApiToken, removeApiEndpoint, startApiServer, writeApiEndpoint, type ApiServer
} from '../api/index.js'

/** The agent the MCP tools act through: always its local API, so its limits and checks apply as for any client */
export interface AttachedAgent {
  client: ApiClient
  /** `api`: a running `molt agent`; `embedded`: a node (and API) this process started on the data dir */
  via: 'api' | 'embedded'
  peerId: string
  /** Stops an embedded node and its API; nothing for a running agent */
  close(): Promise<void>
}

export interface AttachOptions {
  signal?: AbortSignal
  /** Embedded node only: listen multiaddrs. @default config.json listen */
  listen?: string[]
  /** Embedded node only: LAN discovery by mDNS. @default config.json discovery.mdns */
  mdns?: boolean
}

/**
 * The agent running on `dataDir` (through its API), else a node started here
 * on the data dir with its config, serving the same local API (so `molt send`
 * and friends reach it too while the MCP session lasts). The node lock keeps
 * two nodes off one key.
 */
export async function attachAgent (dataDir: string, options: AttachOptions = {}): Promise<AttachedAgent> {
  const running = await connectToRunningAgent(dataDir, { signal: options.signal })
  if (running != null) {
    return { client: running.client, via: 'api', peerId: running.lock.peerId, close: async () => {} }
  }
  // flags > MOLT_* environment > config.json, as for `molt agent`
  const config = applyEnv(await loadConfig(dataDir))
  const token = await loadOrCreateApiToken(dataDir)
  const node = await createMoltNode({
    dataDir,
    listen: options.listen ?? config.listen,
    agent: {
      ...(process.env.MOLT_AGENT_NAME?.trim() ? { name: config.agent.name } : {}),
      ...(process.env.MOLT_AGENT_ORG?.trim() ? { org: config.agent.org } : {})
    },
    requireSignatures: config.speak.requireSignatures,
    mdns: options.mdns ?? config.discovery.mdns,
    bootstrap: config.discovery.bootstrap,
    relays: config.relays
  })
  let server: ApiServer | undefined
  try {
    server = await startApiServer(node, { port: config.api.port, token })
    await writeApiEndpoint(dataDir, { port: server.port, pid: process.pid })
  } catch (err) {
    await server?.close()
    await node.stop()
    throw err
  }
  const api = server
  return {
    client: new ApiClient({ url: `http://127.0.0.1:${api.port}`, token }),
    via: 'embedded',
    peerId: node.peerId.toString(),
    close: async () => {
      await removeApiEndpoint(dataDir)
      await api.close()
      await node.stop()
    }
  }
}
