import { mkdir } from 'node:fs/promises'
import { Level } from 'level'

/** The node's one LevelDB; each concern takes a sublevel (`inbox`, later `outbox`, `mailbox`, …) */
export type Database = Level<string, string>

/** Open (creating) the LevelDB at `path` */
export async function openDatabase (path: string): Promise<Database> {
  await mkdir(path, { recursive: true, mode: 0o700 })
  const db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  await db.open()
  return db
}
