/**
 * Shared pieces of the fuzz suites (test/fuzz/*.test.ts): run sizes, the
 * process-level crash detectors, mutation operators over bytes and JSON,
 * latency of a legitimate peer measured during an attack, and heap figures.
 *
 * `npm test` runs a small fixed-seed set (FUZZ_RUNS unset): 300–1,000
 * inputs per property, each suite's default given where it calls fuzzRuns();
 * a smoke test of every generator and property against the real code, kept
 * small for the suite's time (#17). `npm run fuzz` sets FUZZ_RUNS=100000
 * (and a random or given FUZZ_SEED) for the campaign that finds bugs.
 */
import fc from 'fast-check'
import v8 from 'node:v8'
import vm from 'node:vm'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import type { PeerId } from '@libp2p/interface'
import type { MoltNode } from '../../src/index.js'
import { ERROR_CATEGORY, DISCOVERY_ERROR_CATEGORY } from '../../src/moltspeak/constants.js'

/** Inputs per protocol: `FUZZ_RUNS` or the CI default given by the suite */
export function fuzzRuns (ciDefault: number): number {
  const env = Number(process.env.FUZZ_RUNS)
  return Number.isSafeInteger(env) && env > 0 ? env : ciDefault
}

/** Fixed in CI so a failure reproduces; `FUZZ_SEED` replays a nightly failure */
export const FUZZ_SEED = Number.isSafeInteger(Number(process.env.FUZZ_SEED)) && process.env.FUZZ_SEED !== undefined
  ? Number(process.env.FUZZ_SEED)
  : 0x6d6f6c74

export const nightly = process.env.FUZZ_RUNS !== undefined

/** Every MoltSpeak error code a node may answer with */
export const ERROR_CODES = new Set([...Object.keys(ERROR_CATEGORY), ...Object.keys(DISCOVERY_ERROR_CATEGORY)])

/**
 * Records every unhandled rejection and uncaught exception of this process
 * while installed; a suite asserts the list is empty at the end.
 */
export class CrashDetector {
  readonly unhandled: unknown[] = []
  readonly uncaught: unknown[] = []
  private readonly onRejection = (reason: unknown): void => { this.unhandled.push(reason) }
  private readonly onException = (err: unknown): void => { this.uncaught.push(err) }

  install (): this {
    process.on('unhandledRejection', this.onRejection)
    process.on('uncaughtException', this.onException)
    return this
  }

  uninstall (): void {
    process.off('unhandledRejection', this.onRejection)
    process.off('uncaughtException', this.onException)
  }

  describe (): string {
    return [...this.unhandled, ...this.uncaught].map(e => (e as Error)?.stack ?? String(e)).join('\n---\n')
  }
}

let gcFn: (() => void) | undefined
/** Heap in use after a full GC (MiB, one decimal) */
export function heapMiB (): number {
  if (gcFn === undefined) {
    v8.setFlagsFromString('--expose-gc')
    gcFn = vm.runInNewContext('gc') as () => void
  }
  gcFn()
  gcFn()
  return Math.round(process.memoryUsage().heapUsed / 1024 / 1024 * 10) / 10
}

/**
 * A condition waited on through the events that can change it (a stream's
 * messages and its end): their handlers call changed(), not a poll
 */
export class Changes {
  private wake = (): void => {}

  changed (): void {
    this.wake()
  }

  /** Resolves once `done()` holds (looked at now and at each changed()); rejects with `error()` after `ms` */
  async until (done: () => boolean, ms: number, error: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = () => {}
        reject(error())
      }, ms)
      this.wake = () => {
        if (!done()) return
        clearTimeout(timer)
        this.wake = () => {}
        resolve()
      }
      this.wake()
    })
  }
}

/** Latencies (ms) of a legitimate peer's request/response loop that runs during an attack */
export class LatencyProbe {
  readonly samples: number[] = []
  failures: unknown[] = []
  private running = false
  private loop?: Promise<void>
  private readonly waiters = new Set<() => void>()

  /** `once` is one request/response round; it runs back to back (with `pauseMs` between) until stop() */
  start (once: () => Promise<void>, pauseMs = 5): void {
    this.running = true
    this.loop = (async () => {
      while (this.running) {
        const started = performance.now()
        try {
          await once()
          this.samples.push(performance.now() - started)
        } catch (err) {
          this.failures.push(err)
        }
        for (const wake of this.waiters) wake()
        await new Promise(resolve => setTimeout(resolve, pauseMs))
      }
    })()
  }

  /**
   * Resolves once `count` more rounds have ended (answered or failed) from
   * now: the honest peer was served (or refused) while the caller's attack
   * state held. Bounded only to report a probe that hangs.
   */
  async next (count = 1, timeoutMs = 60_000): Promise<void> {
    const target = this.samples.length + this.failures.length + count
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (this.samples.length + this.failures.length < target) return
        finish()
        resolve()
      }
      const timer = setTimeout(() => { finish(); reject(new Error(`the probe ended no round within ${timeoutMs} ms`)) }, timeoutMs)
      const finish = (): void => { clearTimeout(timer); this.waiters.delete(wake) }
      this.waiters.add(wake)
    })
  }

  async stop (): Promise<LatencySummary> {
    this.running = false
    await this.loop
    return summarize(this.samples, this.failures.length)
  }
}

/**
 * A legitimate peer's latency during an attack: `from` asks `to` one `query`
 * after another; with `expectSuccess`, a reply that is not a success counts
 * as a failure too
 */
export function queryProbe (from: MoltNode, to: PeerId, expectSuccess = false): LatencyProbe {
  const probe = new LatencyProbe()
  probe.start(async () => {
    // a deadline, not a speed check: the fuzzer shares this event loop and a second suite the cores
    const reply = await from.request(to, { op: 'query', p: { domain: 'probe' } }, { timeout: 30_000 })
    if (expectSuccess) expect(reply.p.status).toBe('success')
  })
  return probe
}

export interface LatencySummary {
  requests: number
  failures: number
  p50: number
  p99: number
  max: number
}

export function summarize (samples: number[], failures = 0): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number): number => sorted.length === 0 ? NaN : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 100) / 100
  return { requests: sorted.length, failures, p50: at(0.5), p99: at(0.99), max: at(1) }
}

/**
 * Print a suite's figures and, for `npm run fuzz`, keep them in
 * bench/results/fuzz-<name>.json (bench/results is not committed)
 */
export async function report (name: string, figures: Record<string, unknown>): Promise<void> {
  const line = JSON.stringify({ suite: name, seed: FUZZ_SEED, ...figures })
  console.log(`[fuzz] ${line}`)
  if (!nightly) return
  const dir = join(process.cwd(), 'bench', 'results')
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, `fuzz-${name}.json`), line + '\n')
}

// ---------------------------------------------------------------- mutations

/** One mutation of a byte string: what attackers (and broken networks) do to valid input */
export type ByteMutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'truncate', at: number }
  | { kind: 'set', at: number, value: number }
  | { kind: 'insert', at: number, bytes: Uint8Array }
  | { kind: 'delete', at: number, count: number }
  | { kind: 'duplicate', at: number, count: number }
  | { kind: 'append', bytes: Uint8Array }

/** Positions are fractions of the input length, so one mutation applies to any input */
export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x7f, 0x80, 0xff, 0x22, 0x7b, 0x7d, 0x5c) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) })
)

export function mutateBytes (input: Uint8Array, mutations: ByteMutation[]): Uint8Array {
  let out = Uint8Array.from(input)
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : ('at' in m ? m.at % (out.length + 1) : 0)
    switch (m.kind) {
      case 'flip':
        if (out.length > 0) out[at % out.length] ^= 1 << m.bit
        break
      case 'truncate':
        out = out.subarray(0, at)
        break
      case 'set':
        if (out.length > 0) out[at % out.length] = m.value
        break
      case 'insert':
        out = concat(out.subarray(0, at), m.bytes, out.subarray(at))
        break
      case 'delete':
        out = concat(out.subarray(0, at), out.subarray(at + m.count))
        break
      case 'duplicate':
        out = concat(out.subarray(0, at + m.count), out.subarray(at))
        break
      case 'append':
        out = concat(out, m.bytes)
        break
    }
  }
  return out
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) { out.set(p, offset); offset += p.length }
  return out
}

/** Unsigned LEB128 of any size, including the ones a decoder must refuse */
export function varint (value: number | bigint, minBytes = 1): Uint8Array {
  let v = BigInt(value)
  const out: number[] = []
  do {
    const byte = Number(v & 0x7fn)
    v >>= 7n
    out.push(byte)
  } while (v > 0n || out.length < minBytes)
  for (let i = 0; i < out.length - 1; i++) out[i] |= 0x80
  return Uint8Array.from(out)
}

/** Length prefixes that lie: huge, overlong (zero-padded), 10-byte, or off by a little */
export const lyingLength: fc.Arbitrary<(actual: number) => Uint8Array> = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 70n) }).map(n => () => varint(n)),
  fc.integer({ min: -8, max: 8 }).map(d => (actual: number) => varint(Math.max(0, actual + d))),
  fc.integer({ min: 2, max: 11 }).map(bytes => (actual: number) => varint(actual, bytes)),
  fc.constantFrom(0xffffffff, 2 ** 32, 2 ** 35, 2 ** 53, 16 * 1024 * 1024 + 1, 8 * 1024 * 1024 + 1, 65_537).map(n => () => varint(n)),
  fc.constant(() => Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
)

/** One JSON-level mutation of an object: a field dropped, retyped, replaced or nested deep */
export type JsonMutation =
  | { kind: 'drop', pick: number }
  | { kind: 'retype', pick: number, value: unknown }
  | { kind: 'add', key: string, value: unknown }
  | { kind: 'nest', pick: number, depth: number }
  | { kind: 'grow', pick: number, size: number }

const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, -0, 1e308, Number.MAX_SAFE_INTEGER + 2, '', '\u0000', '\ud800', '__proto__', 'constructor', [], {}),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxLength: 8 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), { maxKeys: 4 })
)

export const jsonMutation: fc.Arbitrary<JsonMutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('retype' as const), pick: fc.nat(), value: weird }),
  fc.record({ kind: fc.constant('add' as const), key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'sig', 'rid', 't')), value: weird }),
  fc.record({ kind: fc.constant('nest' as const), pick: fc.nat(), depth: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.constantFrom(100, 1000)) }),
  fc.record({ kind: fc.constant('grow' as const), pick: fc.nat(), size: fc.constantFrom(1_000, 70_000, 300_000) })
)

/** Apply JSON mutations at paths picked among every (nested) field of `value` */
export function mutateJson (value: unknown, mutations: JsonMutation[]): unknown {
  let root = structuredClone(value)
  for (const m of mutations) {
    const paths = fieldPaths(root)
    if (m.kind === 'add') {
      if (isObject(root)) Object.defineProperty(root, m.key, { value: m.value, enumerable: true, writable: true, configurable: true })
      continue
    }
    if (paths.length === 0) continue
    const path = paths[m.pick % paths.length]
    const replace = (next: unknown): void => { root = setAt(root, path, next) }
    const current = getAt(root, path)
    switch (m.kind) {
      case 'drop': root = setAt(root, path, undefined, true); break
      case 'retype': replace(m.value); break
      case 'nest': replace(nest(current, m.depth)); break
      case 'grow': replace(typeof current === 'string' ? current + 'x'.repeat(m.size) : Array.from({ length: Math.min(m.size, 5000) }, (_, i) => i)); break
    }
  }
  return root
}

/** JSON text nested `depth` deep (far past what JSON.stringify of a nested value can recurse) */
export function deepJsonText (depth: number, leaf = '1'): string {
  return '{"d":['.repeat(depth) + leaf + ']}'.repeat(depth)
}

export function nest (inner: unknown, depth: number): unknown {
  let out = inner
  for (let i = 0; i < depth; i++) out = i % 2 === 0 ? { d: out } : [out]
  return out
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

type Path = Array<string | number>

function fieldPaths (value: unknown, prefix: Path = [], out: Path[] = [], depth = 0): Path[] {
  if (depth > 6 || out.length > 200) return out
  if (Array.isArray(value)) {
    value.slice(0, 8).forEach((v, i) => { out.push([...prefix, i]); fieldPaths(v, [...prefix, i], out, depth + 1) })
  } else if (isObject(value)) {
    for (const k of Object.keys(value)) { out.push([...prefix, k]); fieldPaths(value[k], [...prefix, k], out, depth + 1) }
  }
  return out
}

function getAt (root: unknown, path: Path): unknown {
  let v: any = root
  for (const k of path) v = v?.[k]
  return v
}

function setAt (root: unknown, path: Path, next: unknown, remove = false): unknown {
  if (path.length === 0) return next
  let parent: any = root
  for (const k of path.slice(0, -1)) parent = parent?.[k]
  const last = path[path.length - 1]
  if (parent == null || typeof parent !== 'object') return root
  if (remove) {
    if (Array.isArray(parent)) parent.splice(last as number, 1)
    else delete parent[last]
  } else {
    parent[last] = next
  }
  return root
}

/** Arbitrary JSON-ish values, nested a little, for "wrong type everywhere" inputs */
export const anyJson: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 4 })

// ------------------------------------------------------- nesting (issue #15)

/** Depths past the 64-level limit: just past it, and far past JSON.stringify's recursion (the reported 20,000) */
export const HOSTILE_DEPTHS = [65, 1000, 20_000, 100_000] as const

/** `[` × depth, then `]` × depth: the cheapest deep value per byte */
export function deepArray (depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth)
}

/** Wide: `count` siblings each nested `depth` (≤ the limit, so accepted by the scan) */
export function wideArray (count: number, depth: number): string {
  return '[' + Array.from({ length: count }, () => deepArray(depth)).join(',') + ']'
}

/**
 * `base` as JSON text with a hostile value spliced in: deep (past the limit)
 * as an extra top-level field or inside one of the object fields `inside`
 * names (`ext`, `from`, `p` …), wide (many siblings just under the limit), or
 * brackets inside a string (which must not count). Sizes stay under `maxBytes`.
 */
export function nestingVariants (base: Record<string, unknown>, inside: string[], maxBytes: number): fc.Arbitrary<{ kind: 'deep' | 'wide' | 'string', text: string }> {
  const splice = (field: string | undefined, value: string): string => {
    const copy = structuredClone(base) as Record<string, any>
    const marker = '__nest_marker__'
    if (field === undefined) copy[marker] = 0
    else copy[field] = { ...(typeof copy[field] === 'object' && copy[field] !== null ? copy[field] : {}), [marker]: 0 }
    return JSON.stringify(copy).replace(`"${marker}":0`, `"x":${value}`)
  }
  const budget = (depth: number): number => Math.max(65, Math.min(depth, Math.floor((maxBytes - 2048) / 2)))
  const where = fc.constantFrom<string | undefined>(undefined, ...inside)
  return fc.oneof(
    fc.tuple(where, fc.constantFrom(...HOSTILE_DEPTHS)).map(([field, depth]) => ({ kind: 'deep' as const, text: splice(field, deepArray(budget(depth))) })),
    fc.tuple(where, fc.integer({ min: 1, max: 40 })).map(([field, depth]) => ({ kind: 'wide' as const, text: splice(field, wideArray(Math.max(1, Math.floor((maxBytes - 4096) / (2 * depth + 1) / 4)), depth)) })),
    fc.tuple(where, fc.constantFrom(...HOSTILE_DEPTHS)).map(([field, depth]) => ({ kind: 'string' as const, text: splice(field, JSON.stringify('['.repeat(budget(depth)) + '\\"[')) }))
  )
}
