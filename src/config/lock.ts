import { open, readFile, unlink } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { join } from 'node:path'
import { LOCK_FILE } from '../constants.js'
import { NodeLockedError } from '../errors.js'

/** What a running node publishes about itself for the CLI to find it */
export interface LockInfo {
  pid: number
  /** Local API port, when the node serves one */
  apiPort?: number
  peerId: string
  startedAt: number
}

/**
 * One node per key: take `<dataDir>/node.lock` or throw NodeLockedError when a
 * live process holds it. A lock left by a dead process is taken over.
 */
export async function acquireLock (dataDir: string, info: LockInfo): Promise<NodeLock> {
  const path = join(dataDir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600)
      await handle.writeFile(JSON.stringify(info))
      await handle.close()
      return new NodeLock(path, info)
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err
      const holder = await readLock(dataDir)
      if (holder != null && isAlive(holder.pid)) {
        throw new NodeLockedError(`A molt node (pid ${holder.pid}) is already running with data dir ${dataDir}`, holder.pid)
      }
      await unlink(path).catch(() => {}) // stale: its process is gone
    }
  }
  throw new NodeLockedError(`Could not take the lock ${path}`, -1)
}

/** The running node's lock info, or undefined when none is running */
export async function readLock (dataDir: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dataDir, LOCK_FILE), 'utf8'))
    return typeof info?.pid === 'number' ? info : undefined
  } catch {
    return undefined
  }
}

/** A live lock holder, or undefined */
export async function findRunningNode (dataDir: string): Promise<LockInfo | undefined> {
  const info = await readLock(dataDir)
  return info != null && isAlive(info.pid) ? info : undefined
}

export class NodeLock {
  constructor (readonly path: string, public info: LockInfo) {}

  async update (patch: Partial<LockInfo>): Promise<void> {
    this.info = { ...this.info, ...patch }
    const handle = await open(this.path, fsConstants.O_WRONLY | fsConstants.O_TRUNC)
    await handle.writeFile(JSON.stringify(this.info))
    await handle.close()
  }

  async release (): Promise<void> {
    await unlink(this.path).catch(() => {})
  }
}

function isAlive (pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM'
  }
}
