/**
 * Disk full (issue #9): the data directory on a small tmpfs that a filler
 * file fills to the last byte. Each scenario (test/faults/disk-full.mjs, real
 * nodes over TCP on 127.0.0.1) runs in a child started with `unshare -m -n`:
 * the tmpfs mounts exist only in that private mount namespace and vanish with
 * it (nothing is ever mounted in the host's), and the nodes see only the
 * namespace's loopback. Needs root (CI runs test/faults as root).
 */
import { describe, it, type ExpectStatic } from 'vitest'
import { join } from 'node:path'
import { runInNamespace, tempRoot } from '../net/namespace.js'
import { skipWithout } from '../support/tools.js'

const SCENARIO = join(import.meta.dirname, 'disk-full.mjs')
/** The full disk: small, so filling it is quick */
const FULL_SIZE = '16m'

/**
 * Run one scenario in a fresh mount + network namespace; the last stdout line is its JSON result.
 * Each scenario has its own namespaces, mounts and temp dir, so the three run side by side
 * (it.concurrent: they wait on the disk and on retries more than they compute)
 */
async function runScenario (expect: ExpectStatic, name: 'outbox' | 'mailbox' | 'inbox', timeoutMs = 50_000): Promise<any> {
  const root = await tempRoot('molt-disk-full-')
  try {
    const full = join(root.dir, 'full')
    const roomy = join(root.dir, 'roomy')
    const setup = [
      // unshare -m makes every mount private to the namespace (propagation private)
      `mkdir -p "${full}" "${roomy}"`,
      `mount -t tmpfs -o size=${FULL_SIZE},mode=0700 tmpfs "${full}"`,
      `mount -t tmpfs -o size=256m,mode=0700 tmpfs "${roomy}"`
    ].join('; ')
    const { code, stderr, result } = await runInNamespace(SCENARIO, [name, full, roomy], timeoutMs, { unshare: ['-m', '-n'], setup })
    if (result.error !== undefined) throw new Error(`disk-full ${name} failed: ${result.error}; stderr: ${stderr.slice(-2000)}`)
    console.log(`[disk-full ${name}] ${JSON.stringify({ ...result, queued: result.queued?.length, reopened: Array.isArray(result.reopened) ? result.reopened.length : result.reopened, restarted: result.restarted?.length })}`)
    expect(code).toBe(0)
    return result
  } finally {
    await root.remove()
  }
}

describe.skipIf(skipWithout('test/faults/disk-full.test.ts', 'root', 'ip', 'unshare'))('disk full', () => {
  it.concurrent('an agent whose outbox cannot be written: send() rejects with a clear error, nothing half-written, recovers when space returns', async ({ expect }) => {
    const r = await runScenario(expect, 'outbox')
    expect(r.crashes).toEqual([])
    expect(r.freeWhenFull).toBe(0)
    // before: queued as usual
    expect(r.queued.length).toBe(1 + 20)
    // full: every send() rejected (never a silent `queued`), with the disk-full cause named
    // (the first: LevelDB's I/O error; then StorageFullError at once, until the disk has room again)
    expect(Object.keys(r.whileFull).every(k => /^\w*Error:(LEVEL_IO_ERROR|ENOSPC)$/.test(k)), JSON.stringify(r.whileFull)).toBe(true)
    expect(Object.values(r.whileFull as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(200)
    expect(r.errors.length).toBeGreaterThan(0)
    for (const message of r.errors) expect(message).toMatch(/no space left on (the )?device/i)
    // nothing refused was kept
    expect(r.outboxWhileFull).toEqual(r.queued.slice(0, 1))
    // space back: sends are queued again
    expect(r.afterFree).toEqual({ queued: 20 })
    // the LevelDB reopens and holds exactly what send() reported queued: before the fault and after it
    // (without the reopen after a failed write, LevelDB lost every write acknowledged after space returned)
    expect(r.reopened).toEqual(r.queued)
    expect(r.restarted).toEqual(r.queued)
    // memory stays bounded through 200 refused sends
    expect(r.heap.after - r.heap.before).toBeLessThan(16)
  }, 60_000)

  it.concurrent('a relay whose mailbox store fills the disk refuses deposits (storage-error), keeps serving, and stores again once space is freed', async ({ expect }) => {
    const r = await runScenario(expect, 'mailbox')
    expect(r.crashes).toEqual([])
    expect(r.stored).toEqual(['stored', 'stored', 'stored', 'stored', 'stored'])
    // full: every deposit refused E_INTERNAL / storage-error; the sender's result says so and keeps the message in its outbox
    expect(r.refused).toEqual({ 'queued:E_INTERNAL/storage-error': 100 })
    expect(r.outboxWhileFull).toBe(100)
    // the relay refused each of the 100 once, and an outbox retry that reached it while still full is refused again
    expect(r.relayWhileFull.messages).toBe(5)
    expect(Object.keys(r.relayWhileFull.refused)).toEqual(['storage-error'])
    expect(r.relayWhileFull.refused['storage-error']).toBeGreaterThanOrEqual(100)
    // the relay keeps serving: the recipient fetched the boxes stored before; the acks (deletes) could not be
    // written, so the boxes are still held (not forgotten in memory while still on disk)
    // (the recipient is online behind the relay: an outbox retry re-resolves it and may deliver a refused
    // message straight through its circuit meanwhile — those are the ones past the five boxes)
    expect(r.gotWhileFull.slice(0, 5)).toEqual([0, 1, 2, 3, 4])
    expect(new Set(r.gotWhileFull).size).toBe(r.gotWhileFull.length)
    expect(r.relayAfterFetch).toEqual({ messages: 5, delivered: 0 })
    // space back: deposits are stored again, the sender's outbox drains, everything arrives once and is acked
    expect(r.afterFree).toEqual(['stored', 'stored', 'stored', 'stored', 'stored'])
    expect(r.distinctGot).toBe(110)
    // every box the relay took was delivered and deleted; the rest of the 100 refused went through the circuit
    expect(r.relayAtEnd.messages).toBe(0)
    expect(r.relayAtEnd.delivered).toBe(r.relayAtEnd.deposited)
    expect(r.relayAtEnd.deposited).toBeGreaterThanOrEqual(10)
    expect(r.relayAtEnd.deposited).toBeLessThanOrEqual(110)
    // the relay's LevelDB reopens, consistent with what it answered: nothing left
    expect(r.reopened).toBe(0)
    expect(r.heap.after - r.heap.before).toBeLessThan(16)
  }, 60_000)

  it.concurrent('a receiver whose inbox cannot be written REJECTs E_INTERNAL (never acks), keeps serving; the sender keeps the messages queued and delivers each once when space returns', async ({ expect }) => {
    const r = await runScenario(expect, 'inbox')
    expect(r.crashes).toEqual([])
    expect(r.freeWhenFull).toBe(0)
    expect(r.before).toEqual({ delivered: 5 })
    // full: nothing is acked that was not stored. A write that still fits in the last page of LevelDB's log may
    // land (and is then in the inbox, below); every other send is refused E_INTERNAL and kept: `queued`, not thrown
    const delivered = r.whileFull.delivered ?? 0
    expect(delivered).toBeLessThanOrEqual(2)
    expect(r.whileFull).toEqual({ ...(delivered > 0 ? { delivered } : {}), queued: 100 - delivered })
    expect(r.whileFullErrors.length).toBeGreaterThan(0)
    for (const message of r.whileFullErrors) expect(message).toMatch(/^receiver could not store the message: .*no space left on (the )?device/i)
    // the outbox retried them on the full disk: refused again, still queued, none given up on
    expect(r.outboxWhileFull).toBe(100 - delivered)
    expect(r.dead).toEqual([])
    // the receiver keeps serving: a request answered from memory, a ping; its inbox holds only what was written
    // a request is dispatched to its handler before its inbox write ends: the reply and the receiver's REJECT of the
    // unstored request race, and either is an honest answer from a receiver that keeps serving
    if (r.echo.status === 'success') expect(r.echo).toEqual({ status: 'success', n: 7 })
    else expect(r.echo).toMatchObject({ code: 'E_INTERNAL', message: expect.stringMatching(/^receiver could not store the message: .*(no space left|bytes free)/i) })
    expect(r.ping).toBe('pong')
    expect(r.inboxWhileFull).toBe(5 + delivered)
    expect(r.heldWhileFull).toBe(r.inboxWhileFull)
    // space back: the outbox drains (the retries carry the same ids: taken as new, not acked as duplicates of
    // what was never stored — which lost all 99 before), direct sends are delivered again
    expect(r.resent).toEqual({})
    expect(r.afterFree).toEqual({ delivered: 5 })
    // every message acked once, and in the inbox once; the application saw each once
    expect(r.acknowledged).toBe(110)
    expect(r.storedCount).toBe(110)
    expect(r.storedDistinct).toBe(110)
    expect(r.storedNs).toBe(110)
    expect(r.acknowledgedMissing).toBe(0)
    expect(r.storedUnacknowledged).toBe(0)
    expect(r.eventsPerId).toEqual({ 1: 110 })
    expect(r.heldAfterFree).toBe(110)
    // the receiver restarts on its LevelDB: everything acknowledged is there, once
    expect(r.reopened).toEqual({ count: 110, distinct: 110, missing: 0 })
    expect(r.heap.after - r.heap.before).toBeLessThan(16)
  }, 60_000)
})
