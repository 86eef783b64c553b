import { describe, it, expect, afterAll } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/storage/index.js'
import { Inbox } from '../../src/inbox/index.js'
import { createMessage } from '../../src/moltspeak/index.js'

const dirs: string[] = []
afterAll(async () => { await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true }))) })

const record = (n: number): { json: string, peer: string, route: 'direct', receivedAt: number } => ({
  json: JSON.stringify(createMessage({ op: 'query', from: { agent: 'a', org: 'b' }, to: { agent: 'c', org: 'd' }, p: { domain: 'x', n } })),
  peer: 'peer',
  route: 'direct',
  receivedAt: n
})

describe('inbox (real LevelDB)', () => {
  it('deferrable appends of different turns share one write; an append that is not deferrable starts it at once, taking them along', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    // a deferral far longer than the test: only the write counter says when writes happen
    const inbox = new Inbox(db, { maxMessages: 1000, deferWriteDelay: 60_000 })
    await inbox.open()
    const deferred = []
    for (let i = 0; i < 5; i++) {
      deferred.push(inbox.append([record(i)], { deferrable: true }).stored)
      await new Promise(resolve => setImmediate(resolve))
    }
    expect(inbox.writes).toBe(0)
    await inbox.append([record(5)]).stored
    await Promise.all(deferred)
    expect(inbox.writes).toBe(1)
    expect((await inbox.list()).map(entry => entry.message.p.n)).toEqual([0, 1, 2, 3, 4, 5])
    await db.close()
  })

  it('counts as held (size, the molt_inbox_messages gauge) only what was written, not an append whose write is pending', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    const inbox = new Inbox(db, { maxMessages: 1000, deferWriteDelay: 60_000 })
    await inbox.open()
    await inbox.append([record(0)]).stored
    expect(inbox.size).toBe(1)
    // a write that may still fail (a full disk) is not counted yet
    const pending = inbox.append([record(1), record(2)], { deferrable: true }).stored
    expect(inbox.size).toBe(1)
    await inbox.append([record(3)]).stored
    await pending
    expect(inbox.size).toBe(4)
    await db.close()
  })

  it('stores a batch as the UTF-8 of its JSON text, non-ASCII and astral characters included, and reads it back after reopening', async () => {
    // the batch is encoded part by part into one buffer (inbox.ts jsonArray): its bytes must be what the joined text encodes to
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    let db = await openDatabase(dir)
    let inbox = new Inbox(db, 1000)
    await inbox.open()
    const texts = ['plain', 'é ü ß', '日本語 😀 \u0000', 'x'.repeat(2000) + '€']
    const records = texts.map((text, n) => ({ ...record(n), json: JSON.stringify({ ...JSON.parse(record(n).json), p: { domain: 'x', n, text } }), peer: `peer-ß-${n}` }))
    await inbox.append(records).stored
    await inbox.append([record(4)]).stored
    await db.close()
    db = await openDatabase(dir)
    inbox = new Inbox(db, 1000)
    await inbox.open()
    expect(inbox.size).toBe(5)
    const entries = await inbox.list()
    expect(entries.map(e => e.cursor)).toEqual([1, 2, 3, 4, 5])
    expect(entries.slice(0, 4).map(e => [e.peer, e.message.p.text])).toEqual(texts.map((text, n) => [`peer-ß-${n}`, text]))
    expect(entries[4].message.p.n).toBe(4)
    await db.close()
  })

  it('pages by cursor across batch boundaries, losing nothing, and survives reopening', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    let db = await openDatabase(dir)
    let inbox = new Inbox(db, 1000)
    await inbox.open()
    let n = 0
    for (const size of [1, 5, 3, 10, 1]) {
      const { cursors, stored } = inbox.append(Array.from({ length: size }, () => record(n++)))
      await stored
      expect(cursors.length).toBe(size)
    }
    const seen: number[] = []
    let after = 0
    for (;;) {
      const page = await inbox.list({ after, limit: 4 })
      if (page.length === 0) break
      seen.push(...page.map(e => e.message.p.n as number))
      after = page.at(-1)!.cursor
    }
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i))
    await db.close()

    db = await openDatabase(dir)
    inbox = new Inbox(db, 1000)
    await inbox.open()
    expect(inbox.lastCursor).toBe(20)
    expect((await inbox.list({ after: 18 })).map(e => e.cursor)).toEqual([19, 20])
    await inbox.append([record(20)]).stored
    expect(inbox.lastCursor).toBe(21)
    await db.close()
  })

  it('prunes the oldest batches past its bound', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    const inbox = new Inbox(db, 10)
    await inbox.open()
    for (let i = 0; i < 8; i++) await inbox.append([record(2 * i), record(2 * i + 1)]).stored
    expect(inbox.size).toBeLessThanOrEqual(10)
    const all = await inbox.list({ limit: 100 })
    expect(all.map(e => e.cursor)).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
    await db.close()
  })

  it('group commit: the appends of one turn share one LevelDB batch, written on the next turn', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    const inbox = new Inbox(db, 1000)
    await inbox.open()
    const table = db.sublevel('inbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    // count the writes the inbox makes (the real database does them)
    const batches: number[] = []
    const real = table.db.batch.bind(table.db)
    ;(table.db as any).batch = async (ops: unknown[], options?: unknown) => { batches.push(ops.length); return real(ops as any, options as any) }
    const first = inbox.append([record(0)])
    const second = inbox.append([record(1), record(2)])
    expect(batches).toEqual([]) // nothing written before the caller's own work of this turn
    await Promise.all([first.stored, second.stored])
    expect(batches).toEqual([2])
    // appends of a later turn go together in a write of their own
    const a = inbox.append([record(3)])
    await new Promise(resolve => setImmediate(resolve))
    const b = inbox.append([record(4)])
    const c = inbox.append([record(5)])
    await Promise.all([a.stored, b.stored, c.stored])
    expect(batches).toEqual([2, 1, 2])
    expect((await inbox.list({ limit: 100 })).map(e => e.message.p.n)).toEqual([0, 1, 2, 3, 4, 5])
    ;(table.db as any).batch = real
    await db.close()
  })

  it('a failed group write rejects every append in it and gives their places back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-inbox-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    const inbox = new Inbox(db, 1000)
    await inbox.open()
    await inbox.append([record(0)]).stored
    const table = db.sublevel('inbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const real = table.db.batch.bind(table.db)
    ;(table.db as any).batch = async () => { throw Object.assign(new Error('disk full'), { code: 'LEVEL_IO_ERROR_TEST' }) }
    const x = inbox.append([record(1)])
    const y = inbox.append([record(2), record(3)])
    await expect(x.stored).rejects.toThrow('disk full')
    await expect(y.stored).rejects.toThrow('disk full')
    expect(inbox.size).toBe(1)
    ;(table.db as any).batch = real
    await inbox.append([record(4)]).stored
    expect((await inbox.list({ limit: 100 })).map(e => e.message.p.n)).toEqual([0, 4])
    await db.close()
  })
})
