import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { TaskStore, type TaskRecord } from '../../src/services/tasks/store.js'
import { TaskStoreFullError } from '../../src/services/tasks/index.js'

function record (id: string, state: TaskRecord['state'], updatedAt = Date.now()): TaskRecord {
  return { id, role: 'worker', state, offerer: 'peer', deadline: Date.now() + 60_000, messages: [], createdAt: updatedAt, updatedAt }
}

describe('TaskStore', () => {
  const dirs: string[] = []
  const dbs: Database[] = []
  afterEach(async () => {
    await Promise.all(dbs.splice(0).map(async db => db.close().catch(() => {})))
    await Promise.all(dirs.splice(0).map(async d => rm(d, { recursive: true, force: true })))
  })
  async function open (dir?: string): Promise<{ store: TaskStore, dir: string, db: Database }> {
    dir ??= await mkdtemp(join(tmpdir(), 'molt-tasks-'))
    if (!dirs.includes(dir)) dirs.push(dir)
    const db = await openDatabase(dir)
    dbs.push(db)
    return { store: new TaskStore(db, 3), dir, db }
  }

  it('keeps records across a reopen, synced or not', async () => {
    const { store, dir, db } = await open()
    await store.add(record('a', 'offered'))
    await store.save({ ...record('b', 'claimed'), grant: { claimant: 'x', claimId: 'c', grantedAt: 1 } }, { sync: true })
    await db.close()
    const again = await open(dir)
    await again.store.open()
    expect(again.store.get('a')?.state).toBe('offered')
    expect(again.store.get('b')?.grant).toEqual({ claimant: 'x', claimId: 'c', grantedAt: 1 })
    expect(again.store.size).toBe(2)
  })

  it('drops the oldest finished tasks when full, then refuses new ones', async () => {
    const { store } = await open()
    await store.add(record('old-done', 'completed', 1))
    await store.add(record('open-1', 'offered'))
    await store.add(record('open-2', 'offered'))
    await store.add(record('open-3', 'offered'))
    expect(store.get('old-done')).toBeUndefined()
    expect(store.size).toBe(3)
    await expect(store.add(record('open-4', 'offered'))).rejects.toThrow(TaskStoreFullError)
  })

  it('the mirror follows the disk: a failed write leaves the last written state', async () => {
    const { store, db } = await open()
    await store.add(record('a', 'offered'))
    await db.close()
    await expect(store.save({ ...record('a', 'claimed') })).rejects.toThrow()
    expect(store.get('a')?.state).toBe('offered')
  })
})
