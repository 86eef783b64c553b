import { mkdirSync } from 'node:fs'
import { mkdir, readdir, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'

/** The node's one LevelDB; each concern takes a sublevel (`inbox`, later `outbox`, `mailbox`, …) */
export type Database = Level<string, string>

type Sublevel = ReturnType<Database['sublevel']>

/**
 * Per database: its sublevels (closed with it, reopened by recoverDatabase)
 * and whether a write failed with an I/O error (disk full) since it was opened
 */
interface Health { path: string, sublevels: Set<Sublevel>, failed: boolean, recovering?: Promise<void> }
const health = new WeakMap<Database, Health>()

/** Free bytes the disk must have, beyond the write-ahead logs' size, before a failed database is reopened */
const RECOVERY_MARGIN = 1024 * 1024

/** Open (creating) the LevelDB at `path` */
export async function openDatabase (path: string): Promise<Database> {
  await mkdir(path, { recursive: true, mode: 0o700 })
  const db = createDatabase(path)
  await db.open()
  return db
}

/**
 * The LevelDB at `path`, opening: operations wait until it is open (for a
 * caller that cannot await, e.g. a libp2p service factory)
 */
export function createDatabase (path: string): Database {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  const db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const state: Health = { path, sublevels: new Set(), failed: false }
  db.hooks.newsub.add((sublevel: Sublevel) => { state.sublevels.add(sublevel) })
  health.set(db, state)
  return db
}

/** The disk has no room for a write: refused at once, without touching the database */
export class StorageFullError extends Error {
  static override name = 'StorageFullError'
  override name = 'StorageFullError'
  readonly code = 'ENOSPC'
}

/**
 * Run one write to `db` (a batch): refused with `StorageFullError` while the
 * disk is still too full after an earlier failure, and recording an I/O
 * failure (ENOSPC) so the database is reopened before the next write.
 *
 * Why (test/faults/disk-full.test.ts): after LevelDB failed to append to its
 * write-ahead log (disk full), it keeps appending to the same log behind the
 * torn record, and every write it acknowledged after space returned — even
 * with `sync: true` — was gone once the database was reopened. A memtable
 * flush that fails on a full disk also leaves LevelDB refusing every write
 * until it is reopened. Reopening replays the log up to the torn record (what
 * was acknowledged before stays), writes it to a table and starts a new log.
 */
export async function writeGuarded<T> (db: Database, write: () => Promise<T>): Promise<T> {
  const state = health.get(db)
  if (state?.failed === true) await recoverDatabase(db, state)
  try {
    return await write()
  } catch (err: any) {
    if (state !== undefined && err?.code === 'LEVEL_IO_ERROR') state.failed = true
    throw err
  }
}

/** Open a database again after close(), with the sublevels taken from it before (closing it closed them) */
export async function reopenDatabase (db: Database): Promise<void> {
  await db.open()
  for (const sublevel of health.get(db)?.sublevels ?? []) await sublevel.open()
}

/** Reopen a database whose write failed, once the disk has room for LevelDB's recovery (else StorageFullError) */
async function recoverDatabase (db: Database, state: Health): Promise<void> {
  state.recovering ??= (async () => {
    // reopening on a still-full disk would fail and leave the database closed (no reads either):
    // keep it open and refuse writes until the logs can be replayed into a table
    let logs = 0
    for (const file of await readdir(state.path)) {
      if (file.endsWith('.log')) logs += (await stat(join(state.path, file))).size
    }
    const fs = await statfs(state.path)
    const free = fs.bavail * fs.bsize
    if (free < logs + RECOVERY_MARGIN) {
      throw new StorageFullError(`no space left on the device for the database: ${free} bytes free, ${logs + RECOVERY_MARGIN} needed to resume writing`)
    }
    if (db.status === 'open') await db.close()
    await db.open()
    // closing the database closed its sublevels: reopen them (their parent is open)
    for (const sublevel of state.sublevels) await sublevel.open()
    state.failed = false
  })().finally(() => { state.recovering = undefined })
  return state.recovering
}
