import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, type Database } from '../../src/storage/index.js'
import { Outbox, OutboxFullError, type OutboxEntry } from '../../src/delivery/outbox.js'

/** The outbox on a real LevelDB in a temp dir: order, limits, dead letters and what survives a reopen */
let dir: string
let db: Database

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'molt-outbox-'))
  db = await openDatabase(join(dir, 'db'))
})

afterEach(async () => {
  await db.close()
  await rm(dir, { recursive: true, force: true })
})

function entry (outbox: Outbox, peer: string, id: string, seq = outbox.takeSeq()): OutboxEntry {
  return { seq, peer, id, op: 'query', mode: 'at-least-once', json: JSON.stringify({ id }), createdAt: 1, exp: Date.now() + 60_000, attempts: 0 }
}

describe('Outbox', () => {
  it('keeps each peer\'s entries in send order, even when added out of order', async () => {
    const outbox = new Outbox(db, { maxMessages: 10, maxDeadLetters: 10 })
    await outbox.open()
    const first = entry(outbox, 'p1', 'a')
    const second = entry(outbox, 'p1', 'b')
    const other = entry(outbox, 'p2', 'c')
    await outbox.add(second)
    await outbox.add(other)
    await outbox.add(first)
    expect(outbox.pending('p1').map(e => e.id)).toEqual(['a', 'b'])
    expect(outbox.pending().map(e => e.id)).toEqual(['a', 'b', 'c'])
    expect(outbox.peers().sort()).toEqual(['p1', 'p2'])
    expect(outbox.size).toBe(3)
    expect(outbox.bytes).toBe(first.json.length + second.json.length + other.json.length)
    await outbox.close()
  })

  it('refuses past maxMessages with OutboxFullError, and keeps what it holds', async () => {
    const outbox = new Outbox(db, { maxMessages: 2, maxDeadLetters: 10 })
    await outbox.open()
    await outbox.add(entry(outbox, 'p', 'a'))
    await outbox.add(entry(outbox, 'p', 'b'))
    const err = await outbox.add(entry(outbox, 'p', 'c')).catch(e => e)
    expect(err.name).toBe(OutboxFullError.name)
    expect(outbox.pending('p').map(e => e.id)).toEqual(['a', 'b'])
    await outbox.close()
  })

  it('pending entries, dead letters and the sequence survive a reopen; removed ones do not', async () => {
    const outbox = new Outbox(db, { maxMessages: 10, maxDeadLetters: 10 })
    await outbox.open()
    const a = entry(outbox, 'p', 'a')
    const b = entry(outbox, 'p', 'b')
    const c = entry(outbox, 'p', 'c')
    for (const e of [a, b, c]) await outbox.add(e)
    a.attempts = 3
    await outbox.remove([b])
    const letters = await outbox.bury([c], 'refused', 42)
    expect(letters.map(l => [l.id, l.reason, l.at])).toEqual([['c', 'refused', 42]])
    await outbox.close()

    const reopened = new Outbox(db, { maxMessages: 10, maxDeadLetters: 10 })
    await reopened.open()
    expect(reopened.pending().map(e => [e.id, e.attempts])).toEqual([['a', 0]])
    expect(reopened.deadLetters().map(l => l.id)).toEqual(['c'])
    // a new entry never reuses a sequence number
    expect(reopened.takeSeq()).toBeGreaterThan(c.seq)
    await reopened.close()
  })

  it('keeps only the newest maxDeadLetters dead letters', async () => {
    const outbox = new Outbox(db, { maxMessages: 10, maxDeadLetters: 2 })
    await outbox.open()
    const entries = ['a', 'b', 'c'].map(id => entry(outbox, 'p', id))
    for (const e of entries) await outbox.add(e)
    await outbox.bury(entries, 'expired')
    expect(outbox.deadLetters().map(l => l.id)).toEqual(['b', 'c'])
    expect(outbox.hasPending('p')).toBe(false)
    await outbox.close()
  })
})
