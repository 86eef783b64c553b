import { open, readFile, rename, unlink } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import { findRunningNode, type LockInfo } from '../config/index.js'
import { ApiClient } from './client.js'
import { AgentApiUnavailableError, ApiTokenError } from './errors.js'
import { loadApiToken } from './token.js'
import { API_ENDPOINT_FILE } from '../constants.js'

export { API_ENDPOINT_FILE }

export interface ApiEndpoint {
  port: number
  /** The agent's pid; an endpoint whose pid does not hold the node lock is stale */
  pid: number
}

/** Publish the API port; written whole then renamed so readers never see half a file */
export async function writeApiEndpoint (dataDir: string, endpoint: ApiEndpoint): Promise<void> {
  const path = join(dataDir, API_ENDPOINT_FILE)
  const tmp = `${path}.${process.pid}.tmp`
  const handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC, 0o600)
  try {
    await handle.writeFile(JSON.stringify(endpoint))
  } finally {
    await handle.close()
  }
  await rename(tmp, path)
}

export async function readApiEndpoint (dataDir: string): Promise<ApiEndpoint | undefined> {
  try {
    const value = JSON.parse(await readFile(join(dataDir, API_ENDPOINT_FILE), 'utf8'))
    return Number.isInteger(value?.port) && Number.isInteger(value?.pid) ? value : undefined
  } catch {
    return undefined
  }
}

/** Remove the endpoint file if this process wrote it */
export async function removeApiEndpoint (dataDir: string): Promise<void> {
  const endpoint = await readApiEndpoint(dataDir)
  if (endpoint?.pid === process.pid) await unlink(join(dataDir, API_ENDPOINT_FILE)).catch(() => {})
}

export interface ConnectOptions {
  signal?: AbortSignal
  /** How long to wait for an agent that holds the lock but has not published its API yet. @default 3000 */
  waitMs?: number
}

/**
 * A client of the agent running with `dataDir`, or `undefined` when no node
 * runs there. Throws AgentApiUnavailableError when a node holds the lock but
 * its API does not answer: starting a second node on the same key is not an option.
 */
export async function connectToRunningAgent (dataDir: string, options: ConnectOptions = {}): Promise<{ client: ApiClient, lock: LockInfo } | undefined> {
  const deadline = Date.now() + (options.waitMs ?? 3000)
  for (;;) {
    const lock = await findRunningNode(dataDir)
    if (lock == null) return undefined
    const port = lock.apiPort ?? await portOf(dataDir, lock.pid)
    if (port != null) {
      const token = await loadApiToken(dataDir)
      if (token == null) throw new ApiTokenError(`A molt node (pid ${lock.pid}) runs with data dir ${dataDir} but there is no API token file`)
      const client = new ApiClient({ url: `http://127.0.0.1:${port}`, token })
      const signal = options.signal != null ? AbortSignal.any([options.signal, AbortSignal.timeout(2000)]) : AbortSignal.timeout(2000)
      const health = await client.health({ signal }).catch(() => undefined)
      if (health?.peerId === lock.peerId) return { client, lock }
    }
    if (Date.now() >= deadline) {
      // a molt relay holds its data dir the same way and serves no API: killing it is not the way out
      throw new AgentApiUnavailableError(`A molt node (pid ${lock.pid}) is running with data dir ${dataDir} but its local API does not answer: ` +
        `a molt relay serves none (point --data-dir or MOLT_HOME at an agent's data dir); an agent that does not answer: try again, or stop it (kill ${lock.pid})`)
    }
    await sleep(100, undefined, { signal: options.signal })
  }
}

async function portOf (dataDir: string, pid: number): Promise<number | undefined> {
  const endpoint = await readApiEndpoint(dataDir)
  return endpoint?.pid === pid ? endpoint.port : undefined
}
