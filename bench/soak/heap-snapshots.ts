/**
 * Heap snapshots of a soak process, to find what its heap growth is made of:
 * with MOLT_SOAK_HEAP_SNAPSHOTS=<dir> set, writes
 * <dir>/<instance>-<offset>.heapsnapshot at each offset of
 * MOLT_SOAK_HEAP_SNAPSHOT_AT (default "3m,13m") after the process started.
 * Diff two of them (e.g. Chrome DevTools, "Comparison") to see what grew.
 */
import { writeHeapSnapshot } from 'node:v8'
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'

export function scheduleHeapSnapshots (instance: string, emit: (value: Record<string, unknown>) => void): () => void {
  const dir = process.env.MOLT_SOAK_HEAP_SNAPSHOTS
  if (dir == null || dir === '') return () => {}
  mkdirSync(dir, { recursive: true })
  const timers = (process.env.MOLT_SOAK_HEAP_SNAPSHOT_AT ?? '3m,13m').split(',').map(at => {
    const ms = parseOffset(at)
    // unref: a pending snapshot must not keep a stopping process alive
    return setTimeout(() => {
      const file = writeHeapSnapshot(join(dir, `${instance.replace(/[^\w.-]/g, '_')}-${at.trim()}.heapsnapshot`))
      emit({ event: 'heap-snapshot', file })
    }, ms).unref()
  })
  return () => { timers.forEach(clearTimeout) }
}

function parseOffset (text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(text.trim())
  if (match == null) throw new Error(`MOLT_SOAK_HEAP_SNAPSHOT_AT: expected offsets like 30s,3m,1h, got "${text}"`)
  return Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h']
}
