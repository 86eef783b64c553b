import type { Database } from '../../storage/index.js'
import { GroupCommit, type CommitOp } from '../../storage/group-commit.js'
import { MailboxRefusedError } from './errors.js'
import type { MailboxLimits } from './limits.js'
import { MailboxRegistry } from './registry.js'
import { TokenBuckets } from '../../utils/token-buckets.js'
import { decodeRecord, encodeRecord, servedJson } from './record.js'
import { FETCH_MAX_BYTES, FETCH_READ_BYTES } from './constants.js'
import { add, subtract, type Usage } from './usage.js'

import type { DepositItem, DepositOrigin, DepositResult, MailboxStats, StoredBox } from './store-types.js'
export type { DepositItem, DepositOrigin, DepositResult, MailboxStats, StoredBox } from './store-types.js'

interface Held { from: string, bytes: number, exp: number, at: number, idKey: string, source: string, first: boolean }
interface Box {
  count: number
  bytes: number
  held: Map<string, Held>
  ids: Map<string, string>
  senders: Map<string, Usage>
  sources: Map<string, Usage>
  /** What first-contact senders hold, together */
  firstContact: Usage
}

const SEQ_DIGITS = 16

/**
 * The relay side of store-and-forward: sealed boxes per recipient in
 * LevelDB, durably written by group commit before a deposit is answered,
 * with every quota of `MailboxLimits` checked (and reserved) before writing:
 * per recipient, per sender, per source address, for first-contact senders
 * together, and for the whole store. Only registered recipients get a
 * mailbox (registry.ts). Keys are `<recipient>!<seq>`, so one recipient's
 * boxes are one range in deposit order. Counters live in memory and are
 * rebuilt on open.
 */
export class MailboxStore {
  private readonly table: ReturnType<Database['sublevel']>
  private readonly commit: GroupCommit
  private readonly boxes = new Map<string, Box>()
  private readonly senderBuckets: TokenBuckets
  private readonly sourceBuckets: TokenBuckets
  /** Boxes and bytes held from each source address, across recipients */
  private readonly sources = new Map<string, Usage>()
  readonly registry: MailboxRegistry
  private seq = 0
  private totalCount = 0
  private totalBytes = 0
  private deposited = 0
  private delivered = 0
  private expiredCount = 0
  private purgedCount = 0
  private readonly refused: Record<string, number> = {}
  private readonly listeners = new Set<(recipient: string) => void>()

  constructor (db: Database, private readonly limits: MailboxLimits, onError?: (err: Error) => void) {
    this.table = db.sublevel('mailbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.commit = new GroupCommit(db, { sync: true })
    this.registry = new MailboxRegistry(db, limits, onError)
    this.senderBuckets = new TokenBuckets(limits.senderRate, limits.senderBurst)
    this.sourceBuckets = new TokenBuckets(limits.sourceRate, limits.sourceBurst)
  }

  async open (): Promise<void> {
    await this.registry.open()
    for await (const [key, value] of this.table.iterator()) {
      const separator = (key as string).lastIndexOf('!')
      const recipient = (key as string).slice(0, separator)
      const seq = Number((key as string).slice(separator + 1))
      const { meta, served } = decodeRecord(value as string)
      this.hold(recipient, (key as string).slice(separator + 1), {
        from: served.from, idKey: `${served.from}/${served.id}`, bytes: served.box.length, exp: served.exp, at: served.at, source: meta.src ?? 'unknown', first: meta.fc === true
      })
      if (seq >= this.seq) this.seq = seq + 1
    }
  }

  async close (): Promise<void> {
    await this.commit.close()
    await this.registry.close()
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
   * @throws {MailboxRefusedError} the recipient is not registered, or a quota, a rate or a size limit refuses the deposit
   */
  async deposit (from: string, to: string, items: DepositItem[], origin: DepositOrigin = {}, now = Date.now()): Promise<DepositResult> {
    if (!this.registry.isRegistered(to, now)) {
      throw this.refuse('E_AGENT_NOT_FOUND', 'unknown-recipient', 'this relay keeps no mailbox for the recipient (it holds no reservation here and opened no mailbox session within the retention period)')
    }
    const source = origin.source ?? 'unknown'
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

    this.takeTokens(from, source, fresh.length, now)
    const first = !this.registry.knows(to, from, now)
    this.checkQuotas(box, from, source, first, fresh.length, bytes)

    // reserve the quota now, so concurrent deposits cannot overshoot while this one is written
    const retention = first ? Math.min(this.limits.retentionMs, this.limits.firstContactRetentionMs) : this.limits.retentionMs
    const ops: CommitOp[] = []
    const keys: string[] = []
    for (const item of fresh) {
      const exp = Math.min(item.exp, now + retention)
      expires = Math.max(expires, exp)
      const key = String(this.seq++).padStart(SEQ_DIGITS, '0')
      keys.push(key)
      this.hold(to, key, { from, idKey: `${from}/${item.id}`, bytes: item.box.length, exp, at: now, source, first })
      const value = encodeRecord({ src: source, ...(first ? { fc: true } : {}) }, { from, id: item.id, exp, at: now, box: item.box })
      ops.push({ type: 'put', sublevel: this.table, key: `${to}!${key}`, value })
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

  /** Every quota a deposit of `count` boxes and `bytes` bytes must fit (protocols/mailbox.md "Limits") */
  private checkQuotas (box: Box | undefined, from: string, source: string, first: boolean, count: number, bytes: number): void {
    const { maxMessagesPerRecipient: maxCount, maxBytesPerRecipient: maxBytes } = this.limits
    const over = (usage: Usage | undefined, share: number, ofCount = maxCount, ofBytes = maxBytes): boolean =>
      (usage?.count ?? 0) + count > ofCount * share || (usage?.bytes ?? 0) + bytes > ofBytes * share
    if (over(box, 1)) {
      throw this.refuse('E_RATE_LIMIT', 'mailbox-full', `the recipient's mailbox is full (${box?.count ?? 0} boxes, ${box?.bytes ?? 0} bytes held)`)
    }
    if (first && over(box?.firstContact, this.limits.firstContactShare)) {
      throw this.refuse('E_RATE_LIMIT', 'first-contact-quota', `senders the recipient never received a message from already hold their ${this.limits.firstContactShare} share of its mailbox`)
    }
    const sender = box?.senders.get(from)
    if (over(sender, this.limits.maxSenderShare)) {
      throw this.refuse('E_RATE_LIMIT', 'sender-quota', `this sender already holds its share of the recipient's mailbox (${sender?.count ?? 0} boxes)`)
    }
    if (over(box?.sources.get(source), this.limits.maxSourceShare)) {
      throw this.refuse('E_RATE_LIMIT', 'source-quota', 'this source address already holds its share of the recipient\'s mailbox')
    }
    if (this.totalCount + count > this.limits.maxTotalMessages || this.totalBytes + bytes > this.limits.maxTotalBytes) {
      throw this.refuse('E_RATE_LIMIT', 'store-full', 'the relay mailbox store is full')
    }
    if (over(this.sources.get(source), this.limits.maxSourceTotalShare, this.limits.maxTotalMessages, this.limits.maxTotalBytes)) {
      throw this.refuse('E_RATE_LIMIT', 'source-quota', 'this source address already holds its share of the relay\'s store')
    }
  }

  /** Up to `limit` boxes for `recipient` after `after` (a key), oldest first; expired ones are skipped */
  async fetch (recipient: string, options: { after?: string, limit: number }, now = Date.now()): Promise<{ items: StoredBox[], more: boolean }> {
    const { items, more } = await this.fetchEncoded(recipient, options, now)
    return { items: JSON.parse(items) as StoredBox[], more }
  }

  /**
   * What `fetch` returns, with the items as the JSON text of their array: the
   * stored records are spliced into it as they are (record.ts), so serving a
   * page parses and writes no box again
   */
  async fetchEncoded (recipient: string, options: { after?: string, limit: number }, now = Date.now()): Promise<{ items: string, count: number, more: boolean }> {
    const held = this.boxes.get(recipient)?.held
    if (held === undefined) return { items: '[]', count: 0, more: false }
    const parts: string[] = []
    const iterator = this.table.iterator({
      gt: `${recipient}!${options.after ?? ''}`,
      lt: `${recipient}!~`,
      limit: options.limit + 1,
      // each read hands over up to this many bytes of entries at once (LevelDB's default is 16 KiB: a read per ~10 boxes)
      highWaterMarkBytes: FETCH_READ_BYTES
    } as any)
    let more = false
    let bytes = 0
    try {
      read: while (true) {
        const entries = await iterator.nextv(options.limit + 1 - parts.length)
        if (entries.length === 0) break
        for (const [key, value] of entries) {
          if (parts.length >= options.limit || bytes >= FETCH_MAX_BYTES) {
            more = true
            break read
          }
          const short = (key as string).slice(recipient.length + 1)
          // acknowledged or purged (its delete not yet written), or expired: gone already
          const box = held.get(short)
          if (box === undefined || box.exp <= now) continue
          parts.push(servedJson(short, value as string))
          bytes += box.bytes
        }
      }
    } finally {
      await iterator.close()
    }
    return { items: `[${parts.join(',')}]`, count: parts.length, more }
  }

  /**
   * Delete every box `sender` left for `recipient`, and count `sender` as a
   * first contact again; returns how many were deleted
   */
  async purge (recipient: string, sender: string): Promise<number> {
    const ops: CommitOp[] = []
    const released: Array<[string, string, Held]> = []
    for (const [key, held] of this.boxes.get(recipient)?.held ?? []) {
      if (held.from !== sender) continue
      this.release(recipient, key)
      released.push([recipient, key, held])
      ops.push({ type: 'del', sublevel: this.table, key: `${recipient}!${key}` })
    }
    this.registry.forget(recipient, sender)
    await this.writeReleased(ops, released, (n) => { this.purgedCount += n })
    return ops.length
  }

  /**
   * Delete acknowledged boxes of `recipient`; unknown keys are ignored.
   * `delivered` names the senders whose acknowledged boxes the recipient
   * opened, verified and kept: they are its contacts from now on (a junk box
   * that did not open makes nobody a contact).
   */
  async ack (recipient: string, keys: string[], delivered: readonly string[] = [], now = Date.now()): Promise<number> {
    const ops: CommitOp[] = []
    const released: Array<[string, string, Held]> = []
    const senders = new Set<string>()
    for (const key of keys) {
      const held = this.boxes.get(recipient)?.held.get(key)
      if (held !== undefined && this.release(recipient, key)) {
        released.push([recipient, key, held])
        senders.add(held.from)
        ops.push({ type: 'del', sublevel: this.table, key: `${recipient}!${key}` })
      }
    }
    await this.writeReleased(ops, released, (n) => { this.delivered += n })
    const met = delivered.filter(sender => senders.has(sender))
    if (met.length > 0) this.registry.meet(recipient, met, now)
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
    this.registry.sweep(now)
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
      for (const [recipient, key, held] of released) this.hold(recipient, key, held)
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
      purged: this.purgedCount,
      registrations: this.registry.size,
      refused: { ...this.refused }
    }
  }

  /** The sender's and the source address's rate; neither is charged when either refuses */
  private takeTokens (from: string, source: string, count: number, now: number): void {
    const senderWait = this.senderBuckets.take(from, count, now)
    if (senderWait !== undefined) {
      throw this.refuse('E_RATE_LIMIT', 'rate-limited', `deposit rate over ${this.limits.senderRate}/s for this sender`, senderWait)
    }
    const sourceWait = this.sourceBuckets.take(source, count, now)
    if (sourceWait !== undefined) {
      this.senderBuckets.refund(from, count)
      throw this.refuse('E_RATE_LIMIT', 'rate-limited', `deposit rate over ${this.limits.sourceRate}/s for this source address`, sourceWait)
    }
  }

  private refuse (code: 'E_RATE_LIMIT' | 'E_INVALID_PARAM' | 'E_TIMEOUT' | 'E_INTERNAL' | 'E_AGENT_NOT_FOUND', reason: MailboxRefusedError['reason'], message: string, retryAfter?: number): MailboxRefusedError {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
    return new MailboxRefusedError(message, code, reason, retryAfter)
  }

  private hold (recipient: string, key: string, held: Held): void {
    let box = this.boxes.get(recipient)
    if (box === undefined) {
      box = { count: 0, bytes: 0, held: new Map(), ids: new Map(), senders: new Map(), sources: new Map(), firstContact: { count: 0, bytes: 0 } }
      this.boxes.set(recipient, box)
    }
    box.held.set(key, held)
    box.ids.set(held.idKey, key)
    box.count++
    box.bytes += held.bytes
    add(box.senders, held.from, held.bytes)
    add(box.sources, held.source, held.bytes)
    add(this.sources, held.source, held.bytes)
    if (held.first) {
      box.firstContact.count++
      box.firstContact.bytes += held.bytes
    }
    this.totalCount++
    this.totalBytes += held.bytes
  }

  private release (recipient: string, key: string): boolean {
    const box = this.boxes.get(recipient)
    const held = box?.held.get(key)
    if (box === undefined || held === undefined) return false
    box.held.delete(key)
    box.ids.delete(held.idKey)
    box.count--
    box.bytes -= held.bytes
    subtract(box.senders, held.from, held.bytes)
    subtract(box.sources, held.source, held.bytes)
    subtract(this.sources, held.source, held.bytes)
    if (held.first) {
      box.firstContact.count--
      box.firstContact.bytes -= held.bytes
    }
    this.totalCount--
    this.totalBytes -= held.bytes
    if (box.count === 0) this.boxes.delete(recipient)
    return true
  }
}
