import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
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

/** Tries to take the lock before giving up (each after a stale lock was removed or a takeover was under way) */
const LOCK_ATTEMPTS = 5
/** Pause between tries while another starter holds the takeover guard, in ms */
const TAKEOVER_RETRY_MS = 20
/**
 * A takeover guard older than this whose process is gone was left by a crash
 * (a takeover takes milliseconds), and is removed. In ms.
 */
const TAKEOVER_STALE_MS = 10_000

/**
 * One node per key: take `<dataDir>/node.lock` or throw NodeLockedError when a
 * live process holds it. A lock left by a dead process is taken over.
 *
 * The lock appears whole or not at all: it is written to a temporary file and
 * linked into place (link fails when the lock exists), so no reader ever sees
 * it empty and takes a live lock for a stale one. Removing a stale lock is done
 * under a second such file, `node.lock.takeover`, after reading the lock again:
 * of two starters that both found it stale, the second finds the first's live
 * lock (or no lock, which it leaves alone) and never unlinks it.
 */
export async function acquireLock (dataDir: string, info: LockInfo): Promise<NodeLock> {
  const path = join(dataDir, LOCK_FILE)
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    if (await placeFile(path, JSON.stringify(info))) return new NodeLock(path, info)
    const holder = await readLock(dataDir)
    if (holder != null && isAlive(holder.pid)) {
      throw new NodeLockedError(`A molt node (pid ${holder.pid}) is already running with data dir ${dataDir}`, holder.pid)
    }
    if (!await removeStale(path)) await sleep(TAKEOVER_RETRY_MS)
  }
  throw new NodeLockedError(`Could not take the lock ${path}`, -1)
}

/** The running node's lock info, or undefined when none is running */
export async function readLock (dataDir: string): Promise<LockInfo | undefined> {
  const text = await readFile(join(dataDir, LOCK_FILE), 'utf8').catch(() => undefined)
  return text === undefined ? undefined : parseLock(text)
}

function parseLock (text: string): LockInfo | undefined {
  const info = parseObject(text)
  return typeof info?.pid === 'number' ? info as unknown as LockInfo : undefined
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
    // replaced whole (rename), never truncated in place: a reader sees the old or the new info
    const tmp = await writeTemp(this.path, JSON.stringify(this.info))
    try {
      await rename(tmp, this.path)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  async release (): Promise<void> {
    await unlink(this.path).catch(() => {})
  }
}

/**
 * Under the takeover guard, unlink the lock if it is still stale. False when
 * another starter holds the guard (the caller waits and tries again).
 */
async function removeStale (path: string): Promise<boolean> {
  const guard = `${path}.takeover`
  if (!await placeFile(guard, JSON.stringify({ pid: process.pid }))) {
    await removeAbandonedGuard(guard)
    return false
  }
  try {
    // again, now that no other starter can remove it: it may be a live lock placed since the first
    // read. An absent lock is left alone: another starter may link its own in at any moment
    const text = await readFile(path, 'utf8').catch(() => undefined)
    if (text === undefined) return true
    const holder = parseLock(text)
    // a holder that is gone, or a file that is no lock (a whole lock always parses): this very file is
    // stale, and nobody else can remove or replace it while we hold the guard
    if (holder == null || !isAlive(holder.pid)) await unlink(path).catch(() => {})
    return true
  } finally {
    await unlink(guard).catch(() => {})
  }
}

/** A guard left by a process that died while holding it */
async function removeAbandonedGuard (guard: string): Promise<void> {
  try {
    const [text, info] = await Promise.all([readFile(guard, 'utf8'), stat(guard)])
    const owner = parseObject(text)
    const pid = owner?.pid
    if (Date.now() - info.mtimeMs > TAKEOVER_STALE_MS && !(typeof pid === 'number' && isAlive(pid))) await unlink(guard)
  } catch {}
}

/** Create `path` holding `body`, whole, unless it exists (false then) */
async function placeFile (path: string, body: string): Promise<boolean> {
  const tmp = await writeTemp(path, body)
  try {
    await link(tmp, path)
    return true
  } catch (err: any) {
    if (err.code === 'EEXIST') return false
    throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

/** A new private file beside `path` holding `body` */
async function writeTemp (path: string, body: string): Promise<string> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  // O_EXCL: never follow a planted symlink or reuse someone else's file
  const handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600)
  try {
    await handle.writeFile(body)
  } catch (err) {
    await handle.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await handle.close()
  return tmp
}

function parseObject (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
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
