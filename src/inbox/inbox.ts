import { writeGuarded, type Database } from '../storage/index.js'
import type { MoltMessage } from '../moltspeak/index.js'
import type { Route } from '../services/speak/index.js'
import { DEFER_WRITE_DELAY, DEFER_WRITE_MAX_APPENDS } from './constants.js'

/** One received message as the inbox keeps it */
export interface InboxEntry {
  /** Position in the inbox; poll with `after: cursor` to get what came later */
  cursor: number
  receivedAt: number
  /** Noise-authenticated sender PeerId */
  peer: string
  route: Route
  message: MoltMessage
  /** On live messages claiming `from.org`: whether a trusted organisation's certificate on the sender's card backs the claim */
  org_verified?: boolean
  /** The team topic it was published on (protocols/topics.md); absent for direct messages */
  topic?: string
}

export interface InboxRecord {
  /** The message JSON exactly as received */
  json: string
  peer: string
  route: Route
  receivedAt: number
  /**
   * Remember this message's id across restarts until then (ms): exactly-once
   * de-duplication. Stored beside the batch and pruned with it.
   */
  dedupUntil?: number
  /** The message id (needed with dedupUntil) */
  id?: string
  /** The team topic it was published on */
  topic?: string
}

interface BatchOp { type: 'put' | 'del', key: string, value?: string | Uint8Array, valueEncoding?: 'buffer', sublevel?: unknown }

export interface AppendOptions {
  /**
   * Nobody waits on this batch's acknowledgement (speak 1.1.0 REQUESTs and
   * REPLYs): its write may wait up to `deferWriteDelay` to share one LevelDB
   * batch with later appends. @default false (written at the start of the next turn)
   */
  deferrable?: boolean
}

export interface InboxInit {
  /** @default 100000 */
  maxMessages: number
  /** How long a deferrable append waits for others to share its write, in ms. @default DEFER_WRITE_DELAY */
  deferWriteDelay?: number
}

interface QueuedAppend {
  ops: BatchOp[]
  /** messages it appends */
  count: number
  /** Give back the bookkeeping append() did, when the write failed */
  undo: () => void
  resolve: () => void
  reject: (err: Error) => void
}

const CURSOR_DIGITS = 16
const encodeCursor = (cursor: number): string => cursor.toString().padStart(CURSOR_DIGITS, '0')

/**
 * Every received message, in arrival order, under a monotonic cursor.
 *
 * A batch that arrived together is stored as ONE LevelDB record keyed by its
 * first cursor (a JSON array of entries, messages embedded verbatim as
 * received), so the hot path costs one put per batch rather than one per
 * message. Bounded: past `maxMessages` whole oldest batches are pruned.
 */
export class Inbox {
  private next = 1
  /** first cursor of every stored batch, oldest first, with its size (for pruning) */
  private readonly batches: Array<[first: number, count: number]> = []
  private stored = 0
  private readonly table: ReturnType<Database['sublevel']>
  private readonly seenTable: ReturnType<Database['sublevel']>
  /** Appends waiting for the next group write */
  private queued: QueuedAppend[] = []
  /** messages appended whose write has not landed yet (queued or in flight) */
  private unwritten = 0
  private writeScheduled = false
  /** Only deferrable appends are queued: the timer that writes them */
  private deferTimer?: ReturnType<typeof setTimeout>
  private readonly maxMessages: number
  private readonly deferWriteDelay: number
  /** LevelDB batches written (what the group commit saves is visible in tests and benches) */
  writes = 0

  constructor (db: Database, init: InboxInit | number) {
    const options = typeof init === 'number' ? { maxMessages: init } : init
    this.maxMessages = options.maxMessages
    this.deferWriteDelay = options.deferWriteDelay ?? DEFER_WRITE_DELAY
    this.table = db.sublevel('inbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.seenTable = db.sublevel('inbox-seen', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  }

  /** Every persisted exactly-once id still to be remembered: `peer/id` and until when */
  async * seen (now = Date.now()): AsyncGenerator<[key: string, until: number]> {
    for await (const value of this.seenTable.values()) {
      for (const [key, until] of JSON.parse(value as string) as Array<[string, number]>) {
        if (until > now) yield [key, until]
      }
    }
  }

  async open (): Promise<void> {
    for await (const [key, value] of this.table.iterator()) {
      const count = (JSON.parse(value as string) as unknown[]).length
      this.batches.push([Number(key), count])
      this.stored += count
      this.next = Number(key) + count
    }
  }

  /** Cursor of the newest entry (0 when empty) */
  get lastCursor (): number {
    return this.next - 1
  }

  /** Messages held: written, not those whose write is queued or in flight (it may still fail: disk full) */
  get size (): number {
    return this.stored - this.unwritten
  }

  /**
   * Assign cursors synchronously and store the batch; `stored` resolves once
   * the write landed. Cursors are known before the write ends so the node can
   * dispatch without waiting on the disk.
   *
   * Group commit: appends are not written at once but gathered, and those of
   * one event-loop turn written together in one LevelDB batch at the start of
   * the next. So the write never runs before the work the caller does right
   * after (a request's handler and its reply leave first, the disk write
   * overlaps them), and requests that arrived together share one write.
   * Writes are not serialised behind each other: LevelDB queues concurrent
   * writers and commits them together itself (holding the next group until
   * the previous write ended cost a third of the acknowledged throughput).
   * A `deferrable` append waits longer (AppendOptions) unless another append
   * makes the write start sooner.
   */
  append (records: InboxRecord[], options: AppendOptions = {}): { cursors: number[], stored: Promise<void> } {
    const first = this.next
    const cursors: number[] = []
    const parts: string[] = []
    const seen: Array<[string, number]> = []
    for (const record of records) {
      const cursor = this.next++
      cursors.push(cursor)
      if (record.dedupUntil !== undefined && record.id !== undefined) seen.push([`${record.peer}/${record.id}`, record.dedupUntil])
      // the entry's own members, then the message text as received (encoded apart: no copy of it joined to them)
      parts.push(`{"cursor":${cursor},"receivedAt":${record.receivedAt},"peer":${JSON.stringify(record.peer)},"route":"${record.route}",${record.topic !== undefined ? `"topic":${JSON.stringify(record.topic)},` : ''}"message":`, record.json)
    }
    const ops: BatchOp[] = [
      { type: 'put', key: encodeCursor(first), value: jsonArray(parts), valueEncoding: 'buffer' }
    ]
    if (seen.length > 0) ops.push({ type: 'put', sublevel: this.seenTable, key: encodeCursor(first), value: JSON.stringify(seen) })
    const batch: [number, number] = [first, records.length]
    this.batches.push(batch)
    this.stored += records.length
    this.unwritten += records.length
    const pruned: Array<[number, number]> = []
    while (this.stored > this.maxMessages && this.batches.length > 1) {
      const [oldest, count] = this.batches.shift() as [number, number]
      pruned.push([oldest, count])
      this.stored -= count
      ops.push({ type: 'del', key: encodeCursor(oldest) })
      ops.push({ type: 'del', sublevel: this.seenTable, key: encodeCursor(oldest) })
    }
    // nothing of it was written (disk full): the batch is not held, and the batches it was to prune still are
    const undo = (): void => {
      const at = this.batches.indexOf(batch)
      if (at !== -1) {
        this.batches.splice(at, 1)
        this.stored -= batch[1]
      }
      if (pruned.length > 0) {
        this.batches.push(...pruned)
        this.batches.sort((a, b) => a[0] - b[0])
        for (const [, count] of pruned) this.stored += count
      }
    }
    const stored = new Promise<void>((resolve, reject) => {
      this.queued.push({ ops, count: records.length, undo, resolve, reject })
    })
    if (options.deferrable === true && this.queued.length < DEFER_WRITE_MAX_APPENDS) this.deferWrite()
    else this.scheduleWrite()
    return { cursors, stored }
  }

  private scheduleWrite (): void {
    if (this.writeScheduled) return
    this.writeScheduled = true
    setImmediate(() => {
      this.writeScheduled = false
      this.writeQueued()
    })
  }

  private deferWrite (): void {
    if (this.writeScheduled || this.deferTimer !== undefined) return
    this.deferTimer = setTimeout(() => { this.writeQueued() }, this.deferWriteDelay)
  }

  /** One LevelDB batch for every append queued so far */
  private writeQueued (): void {
    clearTimeout(this.deferTimer)
    this.deferTimer = undefined
    if (this.queued.length === 0) return
    const group = this.queued
    this.queued = []
    this.writes++
    const ops = group.length === 1 ? group[0].ops : group.flatMap(append => append.ops)
    // guarded like every write: a failed write (disk full) makes the database reopen before the next one
    writeGuarded(this.table.db as Database, async () => this.table.batch(ops as any)).then(() => {
      for (const append of group) this.unwritten -= append.count
      for (const append of group) append.resolve()
    }, (err: Error) => {
      for (const append of group) this.unwritten -= append.count
      // newest first, so the batches each restores are back in their places
      for (let i = group.length - 1; i >= 0; i--) group[i].undo()
      for (const append of group) append.reject(err)
    })
  }

  /** Entries with cursor > `after`, oldest first */
  async list (options: { after?: number, limit?: number } = {}): Promise<InboxEntry[]> {
    const after = options.after ?? 0
    const limit = options.limit ?? 100
    const out: InboxEntry[] = []
    // start at the batch holding cursor after+1: the last batch key ≤ after+1
    let start = encodeCursor(0)
    for await (const key of this.table.keys({ lte: encodeCursor(after + 1), reverse: true, limit: 1 })) start = key as string
    for await (const value of this.table.values({ gte: start })) {
      for (const entry of JSON.parse(value as string) as InboxEntry[]) {
        if (entry.cursor <= after) continue
        out.push(entry)
        if (out.length >= limit) return out
      }
    }
    return out
  }
}

/**
 * The batch's JSON array as UTF-8, from `parts` = [head, message, head,
 * message, …] (each entry is `head ‖ message ‖ }`), every part encoded
 * straight into one buffer: the bytes LevelDB would store for the joined
 * string, without a string of the whole batch (a mailbox page is 512
 * messages, ≈ 700 KB) that LevelDB then flattens and encodes again, nor a
 * copy of each message joined to its head. ≈ 1 µs less per message.
 */
function jsonArray (parts: readonly string[]): Buffer {
  const entries = parts.length / 2
  let bytes = 2 + Math.max(0, entries - 1) + entries
  const lengths = parts.map(part => Buffer.byteLength(part, 'utf8'))
  for (const length of lengths) bytes += length
  const out = Buffer.allocUnsafe(bytes)
  let at = 0
  out[at++] = 0x5b // [
  for (let i = 0; i < parts.length; i += 2) {
    if (i > 0) out[at++] = 0x2c // ,
    at += out.write(parts[i], at, lengths[i], 'utf8')
    at += out.write(parts[i + 1], at, lengths[i + 1], 'utf8')
    out[at++] = 0x7d // }
  }
  out[at++] = 0x5d // ]
  // allocUnsafe: every byte must have been written (byteLength and write agree on every string, lone surrogates included)
  if (at !== bytes) throw new Error(`inbox batch encoded ${at} of ${bytes} bytes`)
  return out
}
