import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { TrustSyncError } from './errors.js'
import { mergeDigests } from './sync-digest.js'
import * as c from './constants.js'
import { JsonTooDeepError, parseBoundedJson } from '../../json/index.js'

/*
 * /molt/trust-sync/1.0.0 — one session, client pulls (protocols/trust.md, "Sync"):
 *   C → S  {t:'digest', d:[256 × 'count:xor' | ''], k?:['org-revocation']}   k: the extra record kinds it takes
 *   S → C  {t:'ids', ids:[…]}            ids the server holds in buckets whose digest differs
 *   C → S  {t:'want', ids:[≤ MAX_SYNC_WANT]}   repeated
 *   S → C  {t:'records', records:[…]}    the ones it has, one reply per want
 *   C → S  {t:'done'}, both close
 */

export interface SyncLimits {
  maxIds: number
  maxWant: number
  maxRecords: number
}

/** A set of records reconciled by id (the trust store; organisation revocations) */
export interface SyncSource {
  /** SYNC_BUCKETS × `count:xor` (sync-digest.ts) */
  digest(): string[]
  /** Ids held in `buckets`, sorted, at most `limit` */
  idsInBuckets(buckets: Set<number>, limit: number): string[]
  has(id: string): boolean
  /** The record as a session sends it, or undefined */
  wire(id: string): unknown
}

/** Several disjoint sources as one */
export function unionSource (...sources: SyncSource[]): SyncSource {
  return {
    digest: () => sources.map(s => s.digest()).reduce((a, b) => mergeDigests(a, b)),
    idsInBuckets: (buckets, limit) => sources.flatMap(s => s.idsInBuckets(buckets, limit)).sort().slice(0, limit),
    has: (id) => sources.some(s => s.has(id)),
    wire: (id) => {
      for (const s of sources) {
        const record = s.wire(id)
        if (record !== undefined) return record
      }
      return undefined
    }
  }
}

/** Record kinds beyond attestations a client may ask for (`k`): short names, a few */
const MAX_KINDS = 8
const KIND = /^[a-z-]{1,32}$/

const encoder = new TextEncoder()
const BUCKET_DIGEST = /^(|[0-9]{1,9}:[0-9a-f]{32})$/
const ID = /^[0-9a-f]{64}$/

export function wrap (stream: Stream): LengthPrefixedStream<Stream> {
  return lpStream(stream, { maxDataLength: c.MAX_SYNC_FRAME_BYTES })
}

export async function writeFrame (lp: LengthPrefixedStream<Stream>, frame: Record<string, unknown>, signal: AbortSignal): Promise<void> {
  await lp.write(encoder.encode(JSON.stringify(frame)), { signal })
}

export async function readFrame (lp: LengthPrefixedStream<Stream>, type: string | string[], signal: AbortSignal): Promise<Record<string, unknown>> {
  const bytes = await lp.read({ signal })
  let frame: unknown
  try {
    frame = parseBoundedJson(bytes.subarray())
  } catch (err) {
    throw new TrustSyncError(err instanceof JsonTooDeepError ? `sync frame ${err.message}` : 'sync frame is not UTF-8 JSON')
  }
  const types = Array.isArray(type) ? type : [type]
  if (typeof frame !== 'object' || frame === null || !types.includes((frame as { t?: string }).t ?? '')) {
    throw new TrustSyncError(`expected a ${types.join(' or ')} frame`)
  }
  return frame as Record<string, unknown>
}

/**
 * Server side of one session: answer the digest, then each want, until done.
 * `sourceFor` gives the records to reconcile for the kinds the client takes
 * (a client that names none gets attestations only).
 */
export async function serveSync (stream: Stream, sourceFor: (kinds: string[]) => SyncSource, limits: SyncLimits, signal: AbortSignal): Promise<number> {
  const lp = wrap(stream)
  const frame = await readFrame(lp, 'digest', signal)
  const digest = frame.d
  if (!Array.isArray(digest) || digest.length !== c.SYNC_BUCKETS || !digest.every(d => typeof d === 'string' && BUCKET_DIGEST.test(d))) {
    throw new TrustSyncError(`digest must be ${c.SYNC_BUCKETS} bucket digests`)
  }
  const kinds = frame.k ?? []
  if (!Array.isArray(kinds) || kinds.length > MAX_KINDS || !kinds.every(k => typeof k === 'string' && KIND.test(k))) {
    throw new TrustSyncError(`k must list at most ${MAX_KINDS} record kinds`)
  }
  const store = sourceFor(kinds)
  const ours = store.digest()
  const differing = new Set<number>()
  for (let b = 0; b < c.SYNC_BUCKETS; b++) if (ours[b] !== digest[b] && ours[b] !== '') differing.add(b)
  await writeFrame(lp, { t: 'ids', ids: differing.size === 0 ? [] : store.idsInBuckets(differing, limits.maxIds) }, signal)
  let served = 0
  while (true) {
    const frame = await readFrame(lp, ['want', 'done'], signal)
    if (frame.t === 'done') break
    const ids = frame.ids
    if (!Array.isArray(ids) || ids.length > limits.maxWant || !ids.every(id => typeof id === 'string' && ID.test(id))) {
      throw new TrustSyncError(`want must list at most ${limits.maxWant} attestation ids`)
    }
    if (served + ids.length > limits.maxRecords) throw new TrustSyncError(`session over ${limits.maxRecords} records`)
    const records = []
    for (const id of ids as string[]) {
      const record = store.wire(id)
      if (record !== undefined) records.push(record)
    }
    served += records.length
    await writeFrame(lp, { t: 'records', records }, signal)
  }
  await stream.close({ signal })
  return served
}

/**
 * Client side: send our digest (of `store`, holding attestations and the
 * `kinds` named), ask for the ids we lack, hand each batch of records to
 * `accept` (which verifies and stores them). Returns how many came.
 */
export async function pullSync (
  stream: Stream, store: SyncSource, kinds: string[], limits: SyncLimits, signal: AbortSignal,
  accept: (records: unknown[]) => Promise<void>
): Promise<{ offered: number, received: number }> {
  const lp = wrap(stream)
  await writeFrame(lp, { t: 'digest', d: store.digest(), ...(kinds.length > 0 ? { k: kinds } : {}) }, signal)
  const ids = (await readFrame(lp, 'ids', signal)).ids
  if (!Array.isArray(ids) || ids.length > limits.maxIds || !ids.every(id => typeof id === 'string' && ID.test(id))) {
    throw new TrustSyncError(`ids must list at most ${limits.maxIds} attestation ids`)
  }
  const missing = (ids as string[]).filter(id => !store.has(id)).slice(0, limits.maxRecords)
  let received = 0
  for (let i = 0; i < missing.length; i += limits.maxWant) {
    const want = missing.slice(i, i + limits.maxWant)
    await writeFrame(lp, { t: 'want', ids: want }, signal)
    const records = (await readFrame(lp, 'records', signal)).records
    if (!Array.isArray(records) || records.length > want.length) throw new TrustSyncError('records must answer the want')
    const asked = new Set(want)
    if (!records.every(r => typeof r === 'object' && r !== null && asked.has((r as { id?: string }).id ?? ''))) {
      throw new TrustSyncError('the peer sent records it was not asked for')
    }
    received += records.length
    await accept(records)
  }
  await writeFrame(lp, { t: 'done' }, signal)
  await stream.close({ signal })
  return { offered: ids.length, received }
}
