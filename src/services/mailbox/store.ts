import type { Database } from '../../storage/index.js'
import { GroupCommit, type CommitOp } from '../../storage/group-commit.js'
import { MailboxRefusedError } from './errors.js'
import type { MailboxLimits } from './limits.js'

/** One box as a depositor hands it over */
export interface DepositItem {
  /** The sealed message's MoltSpeak id (bound into the seal) */
  id: string
  /** ms; capped to the relay's retention */
  exp: number
  /** The sealed box, base64 */
  box: string
}

/** One box as the recipient fetches it */
export interface StoredBox extends DepositItem {
  /** Position in the recipient's mailbox; acknowledge by key */
  key: string
  /** Depositor's PeerId (Noise-authenticated and signature-checked at deposit) */
  from: string
  /** When the relay stored it, ms */
  at: number
}

export interface DepositResult {
  /** Boxes newly stored */
  stored: number
  /** Boxes this relay already held (a re-sent deposit) */
  duplicates: number
  /** Latest expiry among the deposited boxes, after the retention cap */
  expires: number
}

export interface MailboxStats {
  recipients: number
  messages: number
  bytes: number
  /** Deposit time of the oldest box held, if any */
  oldestAt?: number
  deposited: number
  delivered: number
  expired: number
  refused: Record<string, number>
}

interface Held { from: string, bytes: number, exp: number, at: number, idKey: string }
interface Box { count: number, bytes: number, held: Map<string, Held>, ids: Map<string, string>, senders: Map<string, { count: number, bytes: number }> }

const SEQ_DIGITS = 16
/**
 * Box bytes (base64) one fetch answer carries at most, beyond its first box.
 * Without it, 512 boxes of up to 1.4 MB made answers far over the 8 MiB frame
 * limit (MAX_FRAME_BYTES) the recipient reads, so a mailbox holding more than
 * ~6 maximum-size boxes could never be fetched (test/integration/hostile.test.ts).
 * 4 MiB plus one maximum box plus the JSON around 512 items stays under 8 MiB.
 */
const FETCH_MAX_BYTES = 4 * 1024 * 1024
/** Token buckets kept for idle senders before the oldest is forgotten (a forgotten sender starts with a full bucket) */
const MAX_RATE_BUCKETS = 100_000

/**
 * The relay side of store-and-forward: sealed boxes per recipient in
 * LevelDB, durably written by group commit before a deposit is answered,
 * with every quota of `MailboxLimits` checked (and reserved) before writing.
 * Keys are `<recipient>!<seq>`, so one recipient's boxes are one range in
 * deposit order. Counters live in memory and are rebuilt on open.
 */
export class MailboxStore {
  private readonly table: ReturnType<Database['sublevel']>
  private readonly commit: GroupCommit
  private readonly boxes = new Map<string, Box>()
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private seq = 0
  private totalCount = 0
  private totalBytes = 0
  private deposited = 0
  private delivered = 0
  private expiredCount = 0
  private readonly refused: Record<string, number> = {}
  private readonly listeners = new Set<(recipient: string) => void>()

  constructor (db: Database, private readonly limits: MailboxLimits) {
    this.table = db.sublevel('mailbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.commit = new GroupCommit(db, { sync: true })
  }

  async open (): Promise<void> {
    for await (const [key, value] of this.table.iterator()) {
      const separator = (key as string).lastIndexOf('!')
      const recipient = (key as string).slice(0, separator)
      const seq = Number((key as string).slice(separator + 1))
      const record = JSON.parse(value as string) as StoredBox
      this.hold(recipient, (key as string).slice(separator + 1), record.from, record.id, record.box.length, record.exp, record.at)
      if (seq >= this.seq) this.seq = seq + 1
    }
  }

  async close (): Promise<void> {
    await this.commit.close()
  }

  /** Called with the recipient after every deposit that stored something */
  onDeposit (listener: (recipient: string) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Boxes waiting for `recipient` */
  pending (recipient: string): number {
    return this.boxes.get(recipient)?.count ?? 0
  }

  /**
   * Store `items` from `from` for `to`, whole or not at all; resolves once
   * they are durably written
   *
   * @throws {MailboxRefusedError} a quota, the rate or a size limit refuses the deposit
   */
  async deposit (from: string, to: string, items: DepositItem[], now = Date.now()): Promise<DepositResult> {
    const box = this.boxes.get(to)
    const fresh: DepositItem[] = []
    let bytes = 0
    let expires = 0
    const seen = new Set<string>()
    for (const item of items) {
      const idKey = `${from}/${item.id}`
      if (box?.ids.has(idKey) === true || seen.has(idKey)) continue
      seen.add(idKey)
      if (item.box.length > this.limits.maxBoxBytes * 4 / 3 + 4) {
        throw this.refuse('E_INVALID_PARAM', 'too-large', `a sealed box is over the ${this.limits.maxBoxBytes} byte limit`)
      }
      if (item.exp <= now) throw this.refuse('E_TIMEOUT', 'expired', `box ${item.id} expired before it was deposited`)
      fresh.push(item)
      bytes += item.box.length
    }
    const duplicates = items.length - fresh.length
    if (fresh.length === 0) return { stored: 0, duplicates, expires: Math.max(...items.map(i => Math.min(i.exp, now + this.limits.retentionMs))) }

    this.takeTokens(from, fresh.length, now)
    const count = box?.count ?? 0
    const held = box?.bytes ?? 0
    if (count + fresh.length > this.limits.maxMessagesPerRecipient || held + bytes > this.limits.maxBytesPerRecipient) {
      throw this.refuse('E_RATE_LIMIT', 'mailbox-full', `the recipient's mailbox is full (${count} boxes, ${held} bytes held)`)
    }
    const sender = box?.senders.get(from)
    if ((sender?.count ?? 0) + fresh.length > this.limits.maxMessagesPerRecipient * this.limits.maxSenderShare ||
        (sender?.bytes ?? 0) + bytes > this.limits.maxBytesPerRecipient * this.limits.maxSenderShare) {
      throw this.refuse('E_RATE_LIMIT', 'sender-quota', `this sender already holds its share of the recipient's mailbox (${sender?.count ?? 0} boxes)`)
    }
    if (this.totalCount + fresh.length > this.limits.maxTotalMessages || this.totalBytes + bytes > this.limits.maxTotalBytes) {
      throw this.refuse('E_RATE_LIMIT', 'store-full', 'the relay mailbox store is full')
    }

    // reserve the quota now, so concurrent deposits cannot overshoot while this one is written
    const ops: CommitOp[] = []
    const keys: string[] = []
    for (const item of fresh) {
      const exp = Math.min(item.exp, now + this.limits.retentionMs)
      expires = Math.max(expires, exp)
      const key = String(this.seq++).padStart(SEQ_DIGITS, '0')
      keys.push(key)
      this.hold(to, key, from, item.id, item.box.length, exp, now)
      const record: Omit<StoredBox, 'key'> = { from, id: item.id, exp, at: now, box: item.box }
      ops.push({ type: 'put', sublevel: this.table, key: `${to}!${key}`, value: JSON.stringify(record) })
    }
    try {
      await this.commit.write(ops)
    } catch (err: any) {
      for (const key of keys) this.release(to, key)
      throw this.refuse('E_INTERNAL', 'storage-error', `the relay could not store the deposit: ${err.message}`)
    }
    this.deposited += fresh.length
    for (const listener of this.listeners) listener(to)
    return { stored: fresh.length, duplicates, expires }
  }

  /** Up to `limit` boxes for `recipient` after `after` (a key), oldest first; expired ones are skipped */
  async fetch (recipient: string, options: { after?: string, limit: number }, now = Date.now()): Promise<{ items: StoredBox[], more: boolean }> {
    const items: StoredBox[] = []
    if (!this.boxes.has(recipient)) return { items, more: false }
    const range = { gt: `${recipient}!${options.after ?? ''}`, lt: `${recipient}!~`, limit: options.limit + 1 }
    let more = false
    let bytes = 0
    for await (const [key, value] of this.table.iterator(range)) {
      if (items.length >= options.limit || bytes >= FETCH_MAX_BYTES) {
        more = true
        break
      }
      const record = JSON.parse(value as string) as StoredBox
      if (record.exp <= now) continue
      items.push({ ...record, key: (key as string).slice(recipient.length + 1) })
      bytes += record.box.length
    }
    return { items, more }
  }

  /** Delete acknowledged boxes of `recipient`; unknown keys are ignored */
  async ack (recipient: string, keys: string[]): Promise<number> {
    const ops: CommitOp[] = []
    const released: Array<[string, string, Held]> = []
    for (const key of keys) {
      const held = this.boxes.get(recipient)?.held.get(key)
      if (held !== undefined && this.release(recipient, key)) {
        released.push([recipient, key, held])
        ops.push({ type: 'del', sublevel: this.table, key: `${recipient}!${key}` })
      }
    }
    await this.writeReleased(ops, released, (n) => { this.delivered += n })
    return ops.length
  }

  /** Delete every box past its expiry; returns how many */
  async sweep (now = Date.now()): Promise<number> {
    const ops: CommitOp[] = []
    const released: Array<[string, string, Held]> = []
    for (const [recipient, box] of this.boxes) {
      for (const [key, held] of box.held) {
        if (held.exp > now) continue
        this.release(recipient, key)
        released.push([recipient, key, held])
        ops.push({ type: 'del', sublevel: this.table, key: `${recipient}!${key}` })
      }
    }
    await this.writeReleased(ops, released, (n) => { this.expiredCount += n })
    return ops.length
  }

  /**
   * Write the deletes of boxes already released from the counters; if the
   * write fails (disk full), hold them again: they are still on disk, and
   * released they would be invisible to fetch and quotas until a restart
   * brought them back (test/faults/disk-full.test.ts)
   */
  private async writeReleased (ops: CommitOp[], released: Array<[string, string, Held]>, count: (boxes: number) => void): Promise<void> {
    // counted with the release, so stats() never shows a box gone from `messages` but not yet `delivered`/`expired`
    count(ops.length)
    try {
      await this.commit.write(ops)
    } catch (err) {
      count(-ops.length)
      for (const [recipient, key, held] of released) {
        this.hold(recipient, key, held.from, held.idKey.slice(held.from.length + 1), held.bytes, held.exp, held.at)
      }
      throw err
    }
  }

  stats (): MailboxStats {
    let oldestAt: number | undefined
    for (const box of this.boxes.values()) {
      const first = box.held.values().next().value
      if (first != null && (oldestAt === undefined || first.at < oldestAt)) oldestAt = first.at
    }
    return {
      recipients: this.boxes.size,
      messages: this.totalCount,
      bytes: this.totalBytes,
      oldestAt,
      deposited: this.deposited,
      delivered: this.delivered,
      expired: this.expiredCount,
      refused: { ...this.refused }
    }
  }

  private takeTokens (from: string, count: number, now: number): void {
    let bucket = this.buckets.get(from)
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_RATE_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = { tokens: this.limits.senderBurst, at: now }
    } else {
      this.buckets.delete(from) // re-inserted below: the map stays in least-recently-used order
    }
    bucket.tokens = Math.min(this.limits.senderBurst, bucket.tokens + (now - bucket.at) * this.limits.senderRate / 1000)
    bucket.at = now
    this.buckets.set(from, bucket)
    if (bucket.tokens < count) {
      const retryAfter = Math.ceil((count - bucket.tokens) * 1000 / this.limits.senderRate)
      throw this.refuse('E_RATE_LIMIT', 'rate-limited', `deposit rate over ${this.limits.senderRate}/s for this sender`, retryAfter)
    }
    bucket.tokens -= count
  }

  private refuse (code: 'E_RATE_LIMIT' | 'E_INVALID_PARAM' | 'E_TIMEOUT' | 'E_INTERNAL', reason: MailboxRefusedError['reason'], message: string, retryAfter?: number): MailboxRefusedError {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
    return new MailboxRefusedError(message, code, reason, retryAfter)
  }

  private hold (recipient: string, key: string, from: string, id: string, bytes: number, exp: number, at: number): void {
    let box = this.boxes.get(recipient)
    if (box === undefined) {
      box = { count: 0, bytes: 0, held: new Map(), ids: new Map(), senders: new Map() }
      this.boxes.set(recipient, box)
    }
    const idKey = `${from}/${id}`
    box.held.set(key, { from, bytes, exp, at, idKey })
    box.ids.set(idKey, key)
    box.count++
    box.bytes += bytes
    const sender = box.senders.get(from) ?? { count: 0, bytes: 0 }
    sender.count++
    sender.bytes += bytes
    box.senders.set(from, sender)
    this.totalCount++
    this.totalBytes += bytes
  }

  private release (recipient: string, key: string): boolean {
    const box = this.boxes.get(recipient)
    const held = box?.held.get(key)
    if (box === undefined || held === undefined) return false
    box.held.delete(key)
    box.ids.delete(held.idKey)
    box.count--
    box.bytes -= held.bytes
    const sender = box.senders.get(held.from)
    if (sender !== undefined) {
      sender.count--
      sender.bytes -= held.bytes
      if (sender.count === 0) box.senders.delete(held.from)
    }
    this.totalCount--
    this.totalBytes -= held.bytes
    if (box.count === 0) this.boxes.delete(recipient)
    return true
  }
}
