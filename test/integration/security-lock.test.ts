/**
 * Issue #15 finding 8: `node.lock` is linked into place whole, so a second
 * starter never reads it empty, takes it for stale and unlinks a live lock;
 * a stale lock is removed under a takeover guard, so of several starters
 * racing for it exactly one wins.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { acquireLock, readLock, type NodeLock } from '../../src/config/index.js'
import { NodeLockedError } from '../../src/errors.js'
import { LOCK_FILE } from '../../src/constants.js'

const dirs: string[] = []
async function dir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'molt-lock-test-'))
  dirs.push(d)
  return d
}

afterAll(async () => {
  await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true })))
})

/** A pid no process has any more: a child that already exited */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  return child.pid!
}

const info = (peerId: string): { pid: number, peerId: string, startedAt: number } => ({ pid: process.pid, peerId, startedAt: Date.now() })

/** Start `starters` acquirers at once; the winners, and every loser must be NodeLockedError */
async function race (dataDir: string, starters: number): Promise<NodeLock[]> {
  const results = await Promise.allSettled(Array.from({ length: starters }, async (_, i) => acquireLock(dataDir, info(`starter-${i}`))))
  for (const r of results) {
    if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(NodeLockedError)
  }
  return results.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
}

describe('finding 8: node.lock', () => {
  it('two starters on one data dir: exactly one wins, every time, and the file is the winner\'s', async () => {
    const dataDir = await dir()
    for (let i = 0; i < 300; i++) {
      const winners = await race(dataDir, 2)
      expect(winners, `iteration ${i}`).toHaveLength(1)
      expect((await readLock(dataDir))?.peerId).toBe(winners[0].info.peerId)
      await winners[0].release()
    }
  })

  it('a stale lock (its process is gone): of four starters exactly one takes it over; no live lock is unlinked', async () => {
    const dataDir = await dir()
    const pid = await deadPid()
    for (let i = 0; i < 100; i++) {
      await writeFile(join(dataDir, LOCK_FILE), JSON.stringify({ pid, peerId: 'gone', startedAt: 0 }))
      const winners = await race(dataDir, 4)
      expect(winners, `iteration ${i}`).toHaveLength(1)
      expect((await readLock(dataDir))?.peerId).toBe(winners[0].info.peerId)
      await winners[0].release()
    }
    // no temporary file or takeover guard is left behind
    expect(await readdir(dataDir)).toEqual([])
  })

  it('a reader never sees the lock file empty or partial while starters race', async () => {
    const dataDir = await dir()
    let stop = false
    const seen: string[] = []
    const reader = (async () => {
      while (!stop) {
        try {
          seen.push(await readFile(join(dataDir, LOCK_FILE), 'utf8'))
        } catch {}
        await new Promise(resolve => setImmediate(resolve))
      }
    })()
    for (let i = 0; i < 200; i++) {
      const winners = await race(dataDir, 2)
      await winners[0]?.update({ apiPort: 1000 + i })
      await winners[0]?.release()
    }
    stop = true
    await reader
    for (const text of seen) expect(() => JSON.parse(text), JSON.stringify(text)).not.toThrow()
  })

  it('a live lock of another process is refused with its pid', async () => {
    const dataDir = await dir()
    const lock = await acquireLock(dataDir, info('first'))
    await expect(acquireLock(dataDir, info('second'))).rejects.toMatchObject({ name: 'NodeLockedError', pid: process.pid })
    await lock.release()
  })
})
