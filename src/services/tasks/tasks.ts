import { randomUUID } from 'node:crypto'
import type { Logger } from '@libp2p/interface'
import type { Database } from '../../storage/index.js'
import type { MessageInit, MoltNode, PeerInput, ReceivedMessage } from '../../node.js'
import { errorPayload, respond, task as taskPayload, TASK_PRIORITIES, type ErrorCode, type MoltMessage, type TaskPriority } from '../../moltspeak/index.js'
import { RequestTimeoutError } from '../../errors.js'
import {
  CLAIM_RETRY_INTERVAL, DEFAULT_CLAIM_TIMEOUT, DEFAULT_TASK_TTL, MAX_OFFER_PEERS, MAX_OPEN_OFFERS_PER_PEER, MAX_TASK_TTL, MAX_TASKS, MAX_TEXT_LENGTH, MAX_TIMER,
  TASK_ERROR_CODES, TASK_ID_PATTERN, TASK_STEPS, TERMINAL_STATES
} from './constants.js'
import { InvalidTaskError, TaskClaimRefusedError, TaskNotFoundError, TaskStateError } from './errors.js'
import { TaskStore, type TaskRecord, type TaskState } from './store.js'

/** What an offer says about the work */
export interface TaskInit {
  /** @default a random UUID */
  id?: string
  type?: string
  description?: string
  params?: Record<string, unknown>
  /** Unix ms by which the task must be finished. @default now + 7 days */
  deadline?: number
  /** @default 'normal' (not sent) */
  priority?: TaskPriority
}

export interface ClaimOptions {
  /** Wait for the offerer's grant or refusal. @default true */
  wait?: boolean
  /** ms to wait for the decision. @default 30000 */
  timeout?: number
  signal?: AbortSignal
}

export interface TaskListOptions {
  role?: 'offerer' | 'worker'
  state?: TaskState
  /** @default 1000 */
  limit?: number
}

/** Events: one per new state (`offered`, `claimed`, `running`, `completed`, …), `claim` (offerer: a claim arrived), `progress` and `change` */
export interface TaskService {
  /** Offer a task to one agent or several; the first valid claim wins it */
  offer(peers: PeerInput | PeerInput[], task: TaskInit, options?: { signal?: AbortSignal }): Promise<TaskRecord>
  /** Claim a task offered to this node; resolves granted, throws TaskClaimRefusedError when refused */
  claim(taskId: string, options?: ClaimOptions): Promise<TaskRecord>
  /** The same as claim() */
  accept(taskId: string, options?: ClaimOptions): Promise<TaskRecord>
  /** Worker: report progress (0–1) and/or a note; the first report moves the task to `running` */
  progress(taskId: string, update: { progress?: number, note?: string }): Promise<TaskRecord>
  /** Worker: the task is done; `result` goes to the offerer in a `respond` */
  complete(taskId: string, result?: unknown): Promise<TaskRecord>
  /** Worker: the task failed (an `error` E_TASK_FAILED to the offerer) */
  fail(taskId: string, reason: string): Promise<TaskRecord>
  /** Offerer: withdraw the task (the worker, or every agent it was offered to, is told) */
  cancel(taskId: string, reason?: string): Promise<TaskRecord>
  get(taskId: string): TaskRecord | undefined
  /** Whether `message` is a task-protocol message this service answers */
  handles(message: MoltMessage): boolean
  /** Newest first */
  list(options?: TaskListOptions): TaskRecord[]
  addEventListener(type: string, listener: (evt: any) => void, options?: { once?: boolean, signal?: AbortSignal }): void
  removeEventListener(type: string, listener: (evt: any) => void): void
}

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

export interface TaskServiceComponents {
  node: Pick<MoltNode, 'peerId' | 'send' | 'resolvePeer' | 'addEventListener' | 'removeEventListener'>
  db: Database
  log: Logger
}

/** Transition ids kept per task (a claimant re-sending many claims must not grow a record without bound) */
const MAX_MESSAGE_IDS = 64
const MAX_SHORT_TEXT = 128

/**
 * The task lifecycle over MoltSpeak (protocols/tasks.md): every transition is
 * a signed message sent at-least-once, and every task is kept in LevelDB on
 * both sides. The offerer arbitrates claims one at a time per task and writes
 * its decision to disk before the grant leaves, so one task is never granted
 * twice, across crashes included.
 */
export class DefaultTaskService extends EventTarget implements TaskService {
  private readonly store: TaskStore
  private readonly node: TaskServiceComponents['node']
  private readonly components: TaskServiceComponents
  private readonly receipts: boolean
  private readonly retryInterval: number
  private readonly maxOpenOffers: number
  /** Per task, the tail of its chain of serialized operations */
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly expiryTimers = new Map<string, ReturnType<typeof setTimeout>>()
  /** Tasks whose last claim was acknowledged by the offerer without a decision yet */
  private readonly awaitingDecision = new Set<string>()
  private retryTimer?: ReturnType<typeof setInterval>
  private markReady: () => void = () => {}
  /** Inbound task messages wait for start(): sending needs the node's delivery */
  private readonly ready = new Promise<void>(resolve => { this.markReady = resolve })
  private stopped = false

  constructor (components: TaskServiceComponents, init: TaskServiceInit = {}) {
    super()
    this.node = components.node
    this.components = components
    this.store = new TaskStore(components.db, init.maxTasks ?? MAX_TASKS)
    this.receipts = init.receipts ?? true
    this.retryInterval = init.claimRetryInterval ?? CLAIM_RETRY_INTERVAL
    this.maxOpenOffers = init.maxOpenOffersPerPeer ?? MAX_OPEN_OFFERS_PER_PEER
  }

  /** Read at each use: the node's logger exists only once libp2p does, after this service listens */
  private get log (): Logger {
    return this.components.log
  }

  /** Load the store and listen: before the node can receive anything */
  async open (): Promise<void> {
    await this.store.open()
    // passive: for other ops this listener answers nothing (the node's unhandledRequests); it answers its own, see handles()
    this.node.addEventListener('message', this.onMessage, { passive: true })
    ;(this.node as unknown as EventTarget).addEventListener('stop', this.onStop)
  }

  /** Once the node can send: re-send grants decided but not sent, re-arm expiry and claim retries */
  start (): void {
    this.markReady()
    for (const record of this.store.all()) {
      if (TERMINAL_STATES.has(record.state)) continue
      this.armExpiry(record)
      if (record.role === 'worker' && record.state === 'offered' && record.claim != null) this.awaitingDecision.add(record.id)
      if (record.role === 'offerer' && record.grant != null && record.grant.sent !== true) {
        void this.locked(record.id, async () => this.sendGrant(record.id, undefined)).catch(err => { this.log('could not re-send the grant of %s - %e', record.id, err) })
      }
    }
    this.retryTimer = setInterval(() => { this.retryClaims() }, this.retryInterval)
    this.retryTimer.unref?.()
  }

  /** Whether `message` is a task-protocol message this service answers (the node then does not refuse it as unhandled) */
  handles (message: MoltMessage): boolean {
    return message.op === 'task' && typeof message.p.step === 'string' && (TASK_STEPS as readonly string[]).includes(message.p.step) && taskIdOf(message) !== undefined
  }

  get (taskId: string): TaskRecord | undefined {
    const record = this.store.get(taskId)
    return record != null ? structuredClone(record) : undefined
  }

  list (options: TaskListOptions = {}): TaskRecord[] {
    return this.store.all()
      .filter(r => (options.role === undefined || r.role === options.role) && (options.state === undefined || r.state === options.state))
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, options.limit ?? 1000)
      .map(r => structuredClone(r))
  }

  async offer (peers: PeerInput | PeerInput[], init: TaskInit, options: { signal?: AbortSignal } = {}): Promise<TaskRecord> {
    const inputs = Array.isArray(peers) ? peers : [peers]
    if (inputs.length === 0 || inputs.length > MAX_OFFER_PEERS) throw new InvalidTaskError(`offer to 1 to ${MAX_OFFER_PEERS} agents`, 'peers')
    const resolved = await Promise.all(inputs.map(async p => this.node.resolvePeer(p, options)))
    const offeredTo = [...new Set(resolved.map(p => p.toString()))]
    if (offeredTo.includes(this.node.peerId.toString())) throw new InvalidTaskError('a task cannot be offered to this node itself', 'peers')
    const id = init.id ?? randomUUID()
    if (!TASK_ID_PATTERN.test(id)) throw new InvalidTaskError(`task id must match ${String(TASK_ID_PATTERN)}`, 'id')
    const fields = taskFields(init as Record<string, unknown>, (field, why) => new InvalidTaskError(`${field} ${why}`, field))
    const now = Date.now()
    if (init.deadline !== undefined && init.deadline <= now) throw new InvalidTaskError('deadline is in the past', 'deadline')
    const record: TaskRecord = {
      id,
      role: 'offerer',
      state: 'created',
      offerer: this.node.peerId.toString(),
      offeredTo,
      ...fields,
      deadline: deadlineOf(init.deadline, now),
      messages: [],
      createdAt: now,
      updatedAt: now
    }
    await this.locked(id, async () => {
      if (this.store.get(id) != null) throw new InvalidTaskError(`task ${id} exists`, 'id')
      await this.store.add(record)
    })
    this.armExpiry(record)
    this.emit('created', record)
    const p = taskPayload({ action: 'create', task_id: id, ...fields, deadline: record.deadline, step: 'offer' }) as Record<string, unknown>
    // sent without the task's lock: claims that race the later offers are arbitrated meanwhile
    const sent = await Promise.allSettled(offeredTo.map(async peer => this.node.send(peer, { op: 'task', p }, this.sendOptions())))
    return this.locked(id, async () => {
      const current = this.mustGet(id)
      const next = structuredClone(current)
      sent.forEach((outcome, i) => {
        if (outcome.status === 'fulfilled') addMessage(next, 'offer', outcome.value.id, offeredTo[i])
        else this.log('could not offer %s to %s - %e', id, offeredTo[i], outcome.reason)
      })
      if (next.messages.length === current.messages.length) {
        throw new AggregateError(sent.map(s => (s as PromiseRejectedResult).reason), `task ${id} could not be offered to any agent`)
      }
      if (next.state === 'created') next.state = 'offered'
      await this.store.save(next)
      if (current.state === 'created') this.emit('offered', next)
      return structuredClone(next)
    })
  }

  async accept (taskId: string, options: ClaimOptions = {}): Promise<TaskRecord> {
    return this.claim(taskId, options)
  }

  async claim (taskId: string, options: ClaimOptions = {}): Promise<TaskRecord> {
    // listen before sending: the decision may come back before send() resolves
    const decided = options.wait === false ? undefined : this.decision(taskId, options)
    decided?.catch(() => {})
    try {
      const record = await this.locked(taskId, async () => {
        const current = this.worker(taskId)
        if (current.state !== 'offered') return current
        const next = structuredClone(current)
        next.claim ??= { id: randomUUID(), at: Date.now(), messages: [] }
        // the claim is on disk before it leaves: after a restart it is retried, never made anew
        await this.store.save(next)
        return this.sendClaim(next)
      })
      if (record.state === 'refused') throw new TaskClaimRefusedError(record.error?.message ?? 'claim refused', record.error?.code ?? TASK_ERROR_CODES.CLAIMED)
      if (record.state !== 'offered') {
        if (record.state === 'claimed' || record.state === 'running' || record.state === 'completed' || record.state === 'failed') return record
        throw new TaskStateError(`task ${taskId} is ${record.state}`)
      }
      return decided == null ? record : await decided
    } finally {
      decided?.cancel()
    }
  }

  async progress (taskId: string, update: { progress?: number, note?: string }): Promise<TaskRecord> {
    const progress = update.progress
    if (progress !== undefined && (typeof progress !== 'number' || !(progress >= 0 && progress <= 1))) throw new InvalidTaskError('progress must be a number from 0 to 1', 'progress')
    const note = optionalText(update.note, MAX_TEXT_LENGTH, 'note')
    return this.locked(taskId, async () => {
      const next = structuredClone(this.granted(taskId))
      const first = next.state === 'claimed'
      const sent = await this.node.send(next.offerer, {
        op: 'task',
        p: taskPayload({ action: 'status', task_id: taskId, step: 'progress', ...(progress !== undefined ? { progress } : {}), ...(note !== undefined ? { note } : {}) }) as Record<string, unknown>
      }, this.sendOptions())
      addMessage(next, 'progress', sent.id, next.offerer)
      Object.assign(next, { state: 'running' }, progress !== undefined ? { progress } : {}, note !== undefined ? { note } : {})
      await this.store.save(next)
      if (first) this.emit('running', next)
      this.emit('progress', next, false)
      return structuredClone(next)
    })
  }

  async complete (taskId: string, result?: unknown): Promise<TaskRecord> {
    return this.locked(taskId, async () => {
      const next = structuredClone(this.granted(taskId))
      const sent = await this.node.send(next.offerer, {
        op: 'respond',
        re: next.offerMessage,
        p: respond({ status: 'success', task_id: taskId, ...(result !== undefined ? { data: result } : {}) }) as Record<string, unknown>
      }, this.sendOptions())
      addMessage(next, 'complete', sent.id, next.offerer)
      return this.finish(next, 'completed', { result })
    })
  }

  async fail (taskId: string, reason: string): Promise<TaskRecord> {
    const message = optionalText(reason, MAX_TEXT_LENGTH, 'reason') ?? 'task failed'
    return this.locked(taskId, async () => {
      const next = structuredClone(this.granted(taskId))
      const sent = await this.node.send(next.offerer, {
        op: 'error',
        re: next.offerMessage,
        p: errorPayload('E_TASK_FAILED', message, { context: { task_id: taskId } }) as unknown as Record<string, unknown>
      }, this.sendOptions())
      addMessage(next, 'fail', sent.id, next.offerer)
      return this.finish(next, 'failed', { error: { code: 'E_TASK_FAILED', message } })
    })
  }

  async cancel (taskId: string, reason?: string): Promise<TaskRecord> {
    const text = optionalText(reason, MAX_TEXT_LENGTH, 'reason')
    const { record, recipients } = await this.locked(taskId, async () => {
      const current = this.mustGet(taskId)
      if (current.role !== 'offerer') throw new TaskStateError(`only the offerer cancels task ${taskId}; a worker fails it`)
      if (TERMINAL_STATES.has(current.state)) throw new TaskStateError(`task ${taskId} is ${current.state}`)
      // decided (on disk) before anyone is told: a claim arriving meanwhile is refused
      const done = await this.finish(structuredClone(current), 'cancelled', text !== undefined ? { error: { code: 'E_TASK_CLOSED', message: text } } : {})
      return { record: done, recipients: current.worker != null ? [current.worker] : current.offeredTo ?? [] }
    })
    const p = taskPayload({ action: 'cancel', task_id: taskId, step: 'cancel', ...(text !== undefined ? { reason: text } : {}) }) as Record<string, unknown>
    await Promise.all(recipients.map(async peer => this.node.send(peer, { op: 'task', p }, this.sendOptions()).catch((err: Error) => {
      this.log('could not tell %s of the cancellation of %s - %e', peer, taskId, err)
    })))
    return record
  }

  // --- inbound --------------------------------------------------------------

  private readonly onMessage = (evt: CustomEvent<ReceivedMessage>): void => {
    const { message, peer } = evt.detail
    if (message.op !== 'task' && message.op !== 'respond' && message.op !== 'error') return
    const taskId = taskIdOf(message)
    if (taskId === undefined) return
    // the transport checked a present signature against from.key and from.key against the peer;
    // task messages outlive their stream (stored decisions), so unsigned ones are not taken
    if (message.sig == null) {
      this.log('ignoring an unsigned task message %s from %s', message.id, peer)
      return
    }
    this.ready
      .then(async () => this.locked(taskId, async () => this.inbound(peer, message, taskId)))
      .catch((err: Error) => { this.log.error('task message %s from %s failed - %e', message.id, peer, err) })
  }

  private async inbound (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    if (this.stopped) return
    const p = message.p
    if (message.op === 'respond') return this.onFinished(peer, message, taskId, p.status === 'success' ? 'completed' : 'failed')
    if (message.op === 'error') {
      return p.code === 'E_TASK_FAILED' ? this.onFinished(peer, message, taskId, 'failed') : this.onRefused(peer, message, taskId)
    }
    switch (p.step) {
      case 'offer': return p.action === 'create' ? this.onOffer(peer, message, taskId) : undefined
      case 'claim': return this.onClaim(peer, message, taskId)
      case 'grant': return this.onGrant(peer, message, taskId)
      case 'progress': return this.onProgress(peer, message, taskId)
      case 'cancel': return p.action === 'cancel' ? this.onCancel(peer, taskId) : undefined
      default:
    }
  }

  private async onOffer (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    if (this.store.get(taskId) != null) return // a re-sent offer, or an id clash: the first record stands
    if (this.openOffers(peer) >= this.maxOpenOffers) {
      this.log('ignoring offer %s from %s: %d of its tasks are open here', message.id, peer, this.maxOpenOffers)
      return
    }
    let fields: ReturnType<typeof taskFields>
    try {
      fields = taskFields(message.p, (field, why) => new InvalidTaskError(`${field} ${why}`, field))
    } catch (err) {
      this.log('ignoring a malformed offer %s from %s - %e', message.id, peer, err)
      return
    }
    const now = Date.now()
    const record: TaskRecord = {
      id: taskId,
      role: 'worker',
      state: 'offered',
      offerer: peer,
      ...fields,
      deadline: deadlineOf(typeof message.p.deadline === 'number' ? message.p.deadline : undefined, now),
      offerMessage: message.id,
      messages: [{ step: 'offer', id: message.id, peer }],
      createdAt: now,
      updatedAt: now
    }
    await this.store.add(record)
    this.armExpiry(record)
    this.emit('offered', record)
  }

  /** The arbitration: the first valid claim is granted (persisted first), every other one refused */
  private async onClaim (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const claimId = message.p.claim_id
    if (typeof claimId !== 'string' || claimId.length === 0 || claimId.length > MAX_SHORT_TEXT) return
    const current = this.store.get(taskId)
    if (current?.role !== 'offerer') return this.refuse(peer, message, taskId, TASK_ERROR_CODES.UNKNOWN, 'no such task')
    if (current.offeredTo?.includes(peer) !== true) return this.refuse(peer, message, taskId, TASK_ERROR_CODES.NOT_OFFERED, 'the task was not offered to you')
    this.dispatchEvent(new CustomEvent('claim', { detail: { task: structuredClone(current), claimant: peer } }))
    if (current.grant != null) {
      // idempotent: the winner's re-sent claim gets the same grant again
      if (current.grant.claimant === peer) return this.sendGrant(taskId, message.id)
      return this.refuse(peer, message, taskId, TASK_ERROR_CODES.CLAIMED, 'the task was granted to another agent')
    }
    if (TERMINAL_STATES.has(current.state)) return this.refuse(peer, message, taskId, TASK_ERROR_CODES.CLOSED, `the task is ${current.state}`)
    if (Date.now() >= current.deadline) {
      await this.finish(structuredClone(current), 'expired', {})
      return this.refuse(peer, message, taskId, TASK_ERROR_CODES.CLOSED, 'the task is expired')
    }
    const next = structuredClone(current)
    next.grant = { claimant: peer, claimId, grantedAt: Date.now() }
    next.worker = peer
    next.state = 'claimed'
    await this.store.save(next, { sync: true })
    this.emit('claimed', next)
    await this.sendGrant(taskId, message.id)
  }

  private async onGrant (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const current = this.store.get(taskId)
    const p = message.p
    if (current?.role !== 'worker' || current.offerer !== peer || current.claim == null) return
    if (p.claimant !== this.node.peerId.toString() || p.claim_id !== current.claim.id) return
    if (current.state !== 'offered') return // granted already: the same grant again
    const next = structuredClone(current)
    next.state = 'claimed'
    next.worker = this.node.peerId.toString()
    next.grant = { claimant: next.worker, claimId: current.claim.id, grantedAt: Number(p.granted_at) }
    addMessage(next, 'grant', message.id, peer)
    await this.store.save(next)
    this.awaitingDecision.delete(taskId)
    this.emit('claimed', next)
  }

  private async onRefused (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const current = this.store.get(taskId)
    if (current?.role !== 'worker' || current.offerer !== peer || current.state !== 'offered' || current.claim == null) return
    const context = message.p.context as Record<string, unknown>
    if (context.claim_id !== current.claim.id) return
    const next = structuredClone(current)
    addMessage(next, 'refused', message.id, peer)
    await this.finish(next, 'refused', { error: { code: String(message.p.code), message: String(message.p.message).slice(0, MAX_TEXT_LENGTH) } })
  }

  private async onProgress (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const current = this.store.get(taskId)
    if (current?.role !== 'offerer' || current.worker !== peer || (current.state !== 'claimed' && current.state !== 'running')) return
    const next = structuredClone(current)
    const { progress, note } = message.p
    if (typeof progress === 'number' && progress >= 0 && progress <= 1) next.progress = progress
    if (typeof note === 'string') next.note = note.slice(0, MAX_TEXT_LENGTH)
    next.state = 'running'
    addMessage(next, 'progress', message.id, peer)
    await this.store.save(next)
    if (current.state === 'claimed') this.emit('running', next)
    this.emit('progress', next, false)
  }

  private async onFinished (peer: string, message: MoltMessage, taskId: string, state: 'completed' | 'failed'): Promise<void> {
    const current = this.store.get(taskId)
    if (current?.role !== 'offerer' || current.worker !== peer || (current.state !== 'claimed' && current.state !== 'running')) return
    const next = structuredClone(current)
    addMessage(next, state === 'completed' ? 'complete' : 'fail', message.id, peer)
    await this.finish(next, state, state === 'completed'
      ? { result: message.p.data }
      : { error: { code: String(message.p.code ?? 'E_TASK_FAILED'), message: String(message.p.message ?? 'task failed').slice(0, MAX_TEXT_LENGTH) } })
  }

  private async onCancel (peer: string, taskId: string): Promise<void> {
    const current = this.store.get(taskId)
    if (current?.role !== 'worker' || current.offerer !== peer || TERMINAL_STATES.has(current.state)) return
    await this.finish(structuredClone(current), 'cancelled', {})
  }

  // --- helpers ----------------------------------------------------------------

  private async refuse (peer: string, claim: MoltMessage, taskId: string, code: string, text: string): Promise<void> {
    await this.node.send(peer, {
      op: 'error',
      re: claim.id,
      p: errorPayload(code as ErrorCode, text, { recoverable: false, context: { task_id: taskId, claim_id: claim.p.claim_id } }) as unknown as Record<string, unknown>
    }, this.sendOptions())
  }

  /** Send (again) the grant the store holds; `re` is the claim it answers */
  private async sendGrant (taskId: string, re: string | undefined): Promise<void> {
    const record = this.mustGet(taskId)
    const grant = record.grant
    if (grant == null) return
    const init: MessageInit = {
      op: 'task',
      ...(re !== undefined ? { re } : {}),
      p: taskPayload({ action: 'status', task_id: taskId, step: 'grant', claimant: grant.claimant, claim_id: grant.claimId, granted_at: grant.grantedAt }) as Record<string, unknown>
    }
    const sent = await this.node.send(grant.claimant, init, this.sendOptions())
    const next = structuredClone(this.mustGet(taskId))
    addMessage(next, 'grant', sent.id, grant.claimant)
    if (next.grant != null) next.grant.sent = true
    await this.store.save(next)
  }

  private async sendClaim (record: TaskRecord): Promise<TaskRecord> {
    const claim = record.claim
    if (claim == null) return record
    const sent = await this.node.send(record.offerer, {
      op: 'task',
      p: taskPayload({ action: 'status', task_id: record.id, step: 'claim', claim_id: claim.id }) as Record<string, unknown>
    }, this.sendOptions())
    claim.messages = [...claim.messages, sent.id].slice(-MAX_MESSAGE_IDS)
    addMessage(record, 'claim', sent.id, record.offerer)
    // only an acknowledged claim needs re-sending; a queued or stored one is the outbox's to deliver
    if (sent.status === 'delivered') this.awaitingDecision.add(record.id)
    else this.awaitingDecision.delete(record.id)
    await this.store.save(record)
    return structuredClone(record)
  }

  private retryClaims (): void {
    for (const taskId of this.awaitingDecision) {
      void this.locked(taskId, async () => {
        const current = this.store.get(taskId)
        if (current?.role !== 'worker' || current.state !== 'offered' || current.claim == null) {
          this.awaitingDecision.delete(taskId)
          return
        }
        await this.sendClaim(structuredClone(current))
      }).catch((err: Error) => { this.log('could not re-send the claim of %s - %e', taskId, err) })
    }
  }

  /** Resolves with the record once claimed; rejects when refused, closed, timed out or aborted */
  private decision (taskId: string, options: ClaimOptions): Promise<TaskRecord> & { cancel: () => void } {
    const timeout = options.timeout ?? DEFAULT_CLAIM_TIMEOUT
    let cancel = (): void => {}
    const promise = new Promise<TaskRecord>((resolve, reject) => {
      const signal = AbortSignal.any([...(options.signal != null ? [options.signal] : []), AbortSignal.timeout(timeout)])
      const onChange = (evt: CustomEvent<TaskRecord>): void => {
        const record = evt.detail
        if (record.id !== taskId || record.role !== 'worker') return
        if (record.state === 'claimed') resolve(record)
        else if (record.state === 'refused') reject(new TaskClaimRefusedError(record.error?.message ?? 'claim refused', record.error?.code ?? TASK_ERROR_CODES.CLAIMED))
        else if (TERMINAL_STATES.has(record.state)) reject(new TaskStateError(`task ${taskId} is ${record.state}`))
      }
      const onAbort = (): void => {
        reject(options.signal?.aborted === true ? options.signal.reason : new RequestTimeoutError(`no decision on the claim of ${taskId} within ${timeout} ms`))
      }
      cancel = () => {
        this.removeEventListener('change', onChange as any)
        signal.removeEventListener('abort', onAbort)
      }
      this.addEventListener('change', onChange as any)
      signal.addEventListener('abort', onAbort, { once: true })
    })
    promise.then(cancel, cancel)
    return Object.assign(promise, { cancel: () => { cancel() } })
  }

  private async finish (next: TaskRecord, state: TaskState, fields: Partial<TaskRecord>): Promise<TaskRecord> {
    Object.assign(next, fields, { state })
    await this.store.save(next, { sync: next.role === 'offerer' })
    clearTimeout(this.expiryTimers.get(next.id))
    this.expiryTimers.delete(next.id)
    this.awaitingDecision.delete(next.id)
    this.emit(state, next)
    return structuredClone(next)
  }

  private armExpiry (record: TaskRecord): void {
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

  /** Run `fn` after every earlier operation on the same task */
  private async locked<T> (taskId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(taskId) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const tail = run.then(() => {}, () => {})
    this.locks.set(taskId, tail)
    void tail.then(() => { if (this.locks.get(taskId) === tail) this.locks.delete(taskId) })
    return run
  }

  private openOffers (peer: string): number {
    let open = 0
    for (const record of this.store.all()) {
      if (record.role === 'worker' && record.offerer === peer && !TERMINAL_STATES.has(record.state)) open++
    }
    return open
  }

  private mustGet (taskId: string): TaskRecord {
    const record = this.store.get(taskId)
    if (record == null) throw new TaskNotFoundError(`no task ${taskId}`)
    return record
  }

  private worker (taskId: string): TaskRecord {
    const record = this.mustGet(taskId)
    if (record.role !== 'worker') throw new TaskStateError(`task ${taskId} was offered by this node: only its offerees claim it`)
    return structuredClone(record)
  }

  /** A task granted to this node and not finished */
  private granted (taskId: string): TaskRecord {
    const record = this.worker(taskId)
    if (record.state !== 'claimed' && record.state !== 'running') throw new TaskStateError(`task ${taskId} is ${record.state}, not granted to this node`)
    return record
  }

  private sendOptions (): { sign: true, delivery: 'at-least-once', receipt: boolean } {
    return { sign: true, delivery: 'at-least-once', receipt: this.receipts }
  }

  private emit (type: string, record: TaskRecord, change = true): void {
    const detail = structuredClone(record)
    this.dispatchEvent(new CustomEvent(type, { detail }))
    if (change) this.dispatchEvent(new CustomEvent('change', { detail }))
  }

  private readonly onStop = (): void => {
    this.stopped = true
    clearInterval(this.retryTimer)
    for (const timer of this.expiryTimers.values()) clearTimeout(timer)
    this.expiryTimers.clear()
    this.node.removeEventListener('message', this.onMessage)
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

/** The task id a message is about: `p.task_id`, or `p.context.task_id` of an error */
function taskIdOf (message: MoltMessage): string | undefined {
  const p = message.p
  const id = message.op === 'error'
    ? (typeof p.context === 'object' && p.context !== null ? (p.context as Record<string, unknown>).task_id : undefined)
    : p.task_id
  return typeof id === 'string' && TASK_ID_PATTERN.test(id) ? id : undefined
}

/** The descriptive fields of a task, checked (offer() and inbound offers alike) */
function taskFields (p: Record<string, unknown>, error: (field: string, why: string) => Error): Pick<TaskRecord, 'type' | 'description' | 'params' | 'priority'> {
  const fields: Pick<TaskRecord, 'type' | 'description' | 'params' | 'priority'> = {}
  if (p.type !== undefined) {
    if (typeof p.type !== 'string' || p.type.length > MAX_SHORT_TEXT) throw error('type', `must be a string of at most ${MAX_SHORT_TEXT} characters`)
    fields.type = p.type
  }
  if (p.description !== undefined) {
    if (typeof p.description !== 'string' || p.description.length > MAX_TEXT_LENGTH) throw error('description', `must be a string of at most ${MAX_TEXT_LENGTH} characters`)
    fields.description = p.description
  }
  if (p.params !== undefined) {
    if (typeof p.params !== 'object' || p.params === null || Array.isArray(p.params)) throw error('params', 'must be an object')
    fields.params = p.params as Record<string, unknown>
  }
  if (p.priority !== undefined) {
    if (!(TASK_PRIORITIES as readonly unknown[]).includes(p.priority)) throw error('priority', `must be one of ${TASK_PRIORITIES.join(', ')}`)
    fields.priority = p.priority as TaskPriority
  }
  if (p.deadline !== undefined && (typeof p.deadline !== 'number' || !Number.isFinite(p.deadline))) throw error('deadline', 'must be Unix ms')
  return fields
}

/** The deadline in force: the one asked for, within MAX_TASK_TTL from now */
function deadlineOf (deadline: number | undefined, now: number): number {
  return Math.min(deadline ?? now + DEFAULT_TASK_TTL, now + MAX_TASK_TTL)
}

function optionalText (value: unknown, max: number, field: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length > max) throw new InvalidTaskError(`${field} must be a string of at most ${max} characters`, field)
  return value
}

function addMessage (record: TaskRecord, step: string, id: string, peer: string): void {
  record.messages = [...record.messages, { step, id, peer }].slice(-MAX_MESSAGE_IDS)
}

