import type { Priority } from '../services/speak/priority-queue.js'
import type { Database } from '../storage/index.js'
import { GroupCommit, type CommitOp } from '../storage/group-commit.js'
import type { Op } from '../moltspeak/index.js'
import type { DeliveryMode } from './constants.js'

/** One message waiting in the sender's outbox */
export interface OutboxEntry {
  /** Position in send order (all peers); the outbox sends each peer's entries in this order */
  seq: number
  peer: string
  id: string
  op: Op
  mode: DeliveryMode
  /** The message as it will be sent */
  json: string
  createdAt: number
  /** When it stops being worth delivering: it is then reported as expired */
  exp: number
  /** Delivery attempts so far (this process) */
  attempts: number
  lastError?: string
  /** Its band (protocols/speak.md, "Priority bands"): a flush sends high before normal before low. @default 'normal' */
  priority?: Priority
}

/** A message the outbox gave up on, kept so the application can be told */
export interface DeadLetter extends OutboxEntry {
  /** `expired`: its exp passed first; `refused`: the recipient rejected it (an error reply, never retried) */
  reason: 'expired' | 'refused'
  at: number
}

const SEQ_DIGITS = 16
const key = (seq: number): string => String(seq).padStart(SEQ_DIGITS, '0')

/**
 * The sender's outbox (LevelDB): messages that could not be delivered when
 * sent, kept until the recipient acknowledges them, a relay mailbox holds
 * them, or they expire. Writes are group-committed with fsync: an entry is on
 * disk before send() reports it `queued`. Every pending entry is also kept in
 * memory, per peer in send order (bounded by `maxMessages`).
 */
export class Outbox {
  private readonly pendingTable: ReturnType<Database['sublevel']>
  private readonly deadTable: ReturnType<Database['sublevel']>
  private readonly commit: GroupCommit
  private readonly byPeer = new Map<string, OutboxEntry[]>()
  private readonly dead: DeadLetter[] = []
  private count = 0
  private byteCount = 0
  private nextSeq = 1

  constructor (db: Database, private readonly limits: { maxMessages: number, maxDeadLetters: number }) {
    this.pendingTable = db.sublevel('outbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.deadTable = db.sublevel('outbox-dead', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.commit = new GroupCommit(db, { sync: true })
  }

  async open (): Promise<void> {
    for await (const value of this.pendingTable.values()) {
      const entry = JSON.parse(value as string) as OutboxEntry
      entry.attempts = 0
      this.queueOf(entry.peer).push(entry)
      this.count++
      this.byteCount += entry.json.length
      this.nextSeq = Math.max(this.nextSeq, entry.seq + 1)
    }
    for await (const value of this.deadTable.values()) {
      const letter = JSON.parse(value as string) as DeadLetter
      this.dead.push(letter)
      this.nextSeq = Math.max(this.nextSeq, letter.seq + 1)
    }
  }

  async close (): Promise<void> {
    await this.commit.close()
  }

  /** Reserve the next position in send order (taken when send() is called, so order survives concurrency) */
  takeSeq (): number {
    return this.nextSeq++
  }

  get size (): number {
    return this.count
  }

  /** Bytes of the messages waiting (UTF-16 length of their JSON, ≈ bytes for ASCII) */
  get bytes (): number {
    return this.byteCount
  }

  /** Peers with messages waiting */
  peers (): string[] {
    return [...this.byPeer.keys()]
  }

  /** Pending entries for `peer` (or all), in send order */
  pending (peer?: string): OutboxEntry[] {
    if (peer !== undefined) return [...(this.byPeer.get(peer) ?? [])]
    return [...this.byPeer.values()].flat().sort((a, b) => a.seq - b.seq)
  }

  hasPending (peer: string): boolean {
    return (this.byPeer.get(peer)?.length ?? 0) > 0
  }

  deadLetters (): DeadLetter[] {
    return [...this.dead]
  }

  /**
   * Persist an entry; resolves once it is on disk
   *
   * @throws {OutboxFullError} the outbox holds `maxMessages` already
   */
  async add (entry: OutboxEntry): Promise<void> {
    if (this.count >= this.limits.maxMessages) throw new OutboxFullError(`the outbox holds its limit of ${this.limits.maxMessages} messages`)
    const queue = this.queueOf(entry.peer)
    // keep send order even when entries are added out of order by concurrent sends
    let at = queue.length
    while (at > 0 && queue[at - 1].seq > entry.seq) at--
    queue.splice(at, 0, entry)
    this.count++
    this.byteCount += entry.json.length
    try {
      await this.commit.write([{ type: 'put', sublevel: this.pendingTable, key: key(entry.seq), value: JSON.stringify(entry) }])
    } catch (err) {
      this.drop([entry])
      throw err
    }
  }

  /** Forget delivered (or mailbox-held) entries */
  async remove (entries: OutboxEntry[]): Promise<void> {
    const dropped = this.drop(entries)
    await this.commit.write(dropped.map(entry => ({ type: 'del', sublevel: this.pendingTable, key: key(entry.seq) })))
  }

  /** Move entries to the dead letters (kept, newest `maxDeadLetters`, for the application to see) */
  async bury (entries: OutboxEntry[], reason: DeadLetter['reason'], now = Date.now()): Promise<DeadLetter[]> {
    const dropped = this.drop(entries)
    const ops: CommitOp[] = []
    const letters: DeadLetter[] = []
    for (const entry of dropped) {
      const letter: DeadLetter = { ...entry, reason, at: now }
      letters.push(letter)
      this.dead.push(letter)
      ops.push({ type: 'del', sublevel: this.pendingTable, key: key(entry.seq) })
      ops.push({ type: 'put', sublevel: this.deadTable, key: key(entry.seq), value: JSON.stringify(letter) })
    }
    while (this.dead.length > this.limits.maxDeadLetters) {
      const oldest = this.dead.shift() as DeadLetter
      ops.push({ type: 'del', sublevel: this.deadTable, key: key(oldest.seq) })
    }
    await this.commit.write(ops)
    return letters
  }

  private drop (entries: OutboxEntry[]): OutboxEntry[] {
    const dropped: OutboxEntry[] = []
    for (const entry of entries) {
      const queue = this.byPeer.get(entry.peer)
      const at = queue?.indexOf(entry) ?? -1
      if (queue === undefined || at < 0) continue
      queue.splice(at, 1)
      if (queue.length === 0) this.byPeer.delete(entry.peer)
      this.count--
      this.byteCount -= entry.json.length
      dropped.push(entry)
    }
    return dropped
  }

  private queueOf (peer: string): OutboxEntry[] {
    let queue = this.byPeer.get(peer)
    if (queue === undefined) this.byPeer.set(peer, queue = [])
    return queue
  }
}

/** The outbox is at its message limit: the send is refused rather than silently dropped */
export class OutboxFullError extends Error {
  static override name = 'OutboxFullError'
  override name = 'OutboxFullError'
}
