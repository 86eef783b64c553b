import type { Logger } from '@libp2p/interface'
import type { PeerId } from '@libp2p/interface'
import type { MessageInit, PeerInput, ReceivedMessage, SendOptions, SendResult } from '../../node/message-types.js'
import type { Database } from '../../storage/index.js'
import { MAX_TASKS, MAX_TIMER, TERMINAL_STATES } from './constants.js'
import { TaskNotFoundError, TaskStateError } from './errors.js'
import { TaskStore, type TaskRecord, type TaskState } from './store.js'

export interface TaskServiceInit {
  /** ms between re-sends of an acknowledged but undecided claim. @default 15000 */
  claimRetryInterval?: number
  /** @default 100000 */
  maxTasks?: number
  /** Unfinished tasks one offerer may have open here. @default 1000 */
  maxOpenOffersPerPeer?: number
  /** Ask for a signed delivery receipt of every task message. @default true */
  receipts?: boolean
}

/** What a task offered to a team topic needs: publishing a signed message there (protocols/topics.md) */
export interface TaskTopics {
  publish(topic: string, message: MessageInit): Promise<{ id: string }>
}

/** What the task service uses of its node (a MoltNode) */
export interface TaskNode {
  readonly peerId: PeerId
  send(peer: PeerInput, init: MessageInit, options?: SendOptions): Promise<SendResult>
  resolvePeer(peer: PeerInput, options?: { signal?: AbortSignal }): Promise<PeerId>
  addEventListener(type: 'message', listener: (evt: CustomEvent<ReceivedMessage>) => void, options?: { passive?: boolean }): void
  removeEventListener(type: 'message', listener: (evt: CustomEvent<ReceivedMessage>) => void): void
}

export interface TaskServiceComponents {
  node: TaskNode
  db: Database
  log: Logger
  /** Team topics, for offers to a topic; read at each use (they exist once libp2p does) */
  topics?: () => TaskTopics | undefined
}

/**
 * What the offerer's arbiter, the claimant and the service share: the store,
 * the per-task lock, the expiry timers, events. Every change to a task runs
 * under its lock, so arbitration sees one claim at a time.
 */
export class TaskCore extends EventTarget {
  readonly store: TaskStore
  readonly node: TaskServiceComponents['node']
  readonly components: TaskServiceComponents
  readonly receipts: boolean
  stopped = false
  /** Per task, the tail of its chain of serialized operations */
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly expiryTimers = new Map<string, ReturnType<typeof setTimeout>>()
  /** Tasks whose last claim was acknowledged by the offerer without a decision yet */
  readonly awaitingDecision = new Set<string>()

  constructor (components: TaskServiceComponents, init: TaskServiceInit) {
    super()
    this.node = components.node
    this.components = components
    this.store = new TaskStore(components.db, init.maxTasks ?? MAX_TASKS)
    this.receipts = init.receipts ?? true
  }

  /** Read at each use: the node's logger exists only once libp2p does, after this service listens */
  get log (): Logger {
    return this.components.log
  }

  /** Run `fn` after every earlier operation on the same task */
  async locked<T> (taskId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(taskId) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const tail = run.then(() => {}, () => {})
    this.locks.set(taskId, tail)
    void tail.then(() => { if (this.locks.get(taskId) === tail) this.locks.delete(taskId) })
    return run
  }

  /** Send one task message: signed, at-least-once, with a receipt unless turned off */
  async send (peer: string, init: MessageInit): Promise<SendResult> {
    return this.node.send(peer, init, { sign: true, delivery: 'at-least-once', receipt: this.receipts })
  }

  async finish (next: TaskRecord, state: TaskState, fields: Partial<TaskRecord>): Promise<TaskRecord> {
    Object.assign(next, fields, { state })
    await this.store.save(next, { sync: next.role === 'offerer' })
    this.disarmExpiry(next.id)
    this.awaitingDecision.delete(next.id)
    this.emit(state, next)
    return structuredClone(next)
  }

  armExpiry (record: TaskRecord): void {
    clearTimeout(this.expiryTimers.get(record.id))
    const delay = Math.max(0, record.deadline - Date.now())
    const timer = setTimeout(() => {
      this.expiryTimers.delete(record.id)
      if (delay > MAX_TIMER) {
        this.armExpiry(record)
        return
      }
      void this.locked(record.id, async () => {
        const current = this.store.get(record.id)
        if (current == null || TERMINAL_STATES.has(current.state) || this.stopped) return
        await this.finish(structuredClone(current), 'expired', {})
      }).catch((err: Error) => { this.log('could not expire %s - %e', record.id, err) })
    }, Math.min(delay, MAX_TIMER))
    timer.unref?.()
    this.expiryTimers.set(record.id, timer)
  }

  private disarmExpiry (taskId: string): void {
    clearTimeout(this.expiryTimers.get(taskId))
    this.expiryTimers.delete(taskId)
  }

  /** Clear every timer (the node stops) */
  disarmAll (): void {
    for (const timer of this.expiryTimers.values()) clearTimeout(timer)
    this.expiryTimers.clear()
  }

  mustGet (taskId: string): TaskRecord {
    const record = this.store.get(taskId)
    if (record == null) throw new TaskNotFoundError(`no task ${taskId}`)
    return record
  }

  /** A copy of a task offered to this node */
  worker (taskId: string): TaskRecord {
    const record = this.mustGet(taskId)
    if (record.role !== 'worker') throw new TaskStateError(`task ${taskId} was offered by this node: only its offerees claim it`)
    return structuredClone(record)
  }

  /** A task granted to this node and not finished */
  granted (taskId: string): TaskRecord {
    const record = this.worker(taskId)
    if (record.state !== 'claimed' && record.state !== 'running') throw new TaskStateError(`task ${taskId} is ${record.state}, not granted to this node`)
    return record
  }

  emit (type: string, record: TaskRecord, change = true): void {
    const detail = structuredClone(record)
    this.dispatchEvent(new CustomEvent(type, { detail }))
    if (change) this.dispatchEvent(new CustomEvent('change', { detail }))
  }

  /** A listener that throws is logged, never fatal */
  override dispatchEvent (event: Event): boolean {
    try {
      return super.dispatchEvent(event)
    } catch (err) {
      this.log.error('a task listener threw - %e', err)
      return false
    }
  }
}
