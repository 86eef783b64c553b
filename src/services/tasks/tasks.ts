import { randomUUID } from 'node:crypto'
import type { MoltMessage, TaskPriority } from '../../moltspeak/index.js'
import type { PeerInput, ReceivedMessage } from '../../node/message-types.js'
import { TOPIC_NAME_PATTERN } from '../topics/constants.js'
import { CLAIM_RETRY_INTERVAL, MAX_OFFER_PEERS, MAX_OPEN_OFFERS_PER_PEER, MAX_TEXT_LENGTH, TASK_ID_PATTERN, TERMINAL_STATES } from './constants.js'
import { InvalidTaskError, TaskStateError } from './errors.js'
import type { TaskRecord, TaskState } from './store.js'
import { ClaimArbiter } from './arbiter.js'
import { Claimant, type ClaimOptions } from './claimant.js'
import { TaskCore, type TaskServiceComponents, type TaskServiceInit } from './core.js'
import {
  addMessage, cancelMessage, completeMessage, deadlineOf, failMessage, isTaskMessage, offerMessage, optionalText, progressMessage, taskFields, taskIdOf
} from './codec.js'

export type { ClaimOptions } from './claimant.js'
export type { TaskServiceComponents, TaskServiceInit, TaskTopics } from './core.js'

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

/** Where an offer goes: one agent, several (the first valid claim wins), or every member of a team topic */
export type OfferTarget = PeerInput | PeerInput[] | { topic: string }

export interface TaskListOptions {
  role?: 'offerer' | 'worker'
  state?: TaskState
  /** @default 1000 */
  limit?: number
}

/** Events: one per new state (`offered`, `claimed`, `running`, `completed`, …), `claim` (offerer: a claim arrived), `progress` and `change` */
export interface TaskService {
  /** Offer a task to one agent, several, or a team topic (`{ topic: name }`); the first valid claim wins it */
  offer(target: OfferTarget, task: TaskInit, options?: { signal?: AbortSignal }): Promise<TaskRecord>
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

/**
 * The task lifecycle over MoltSpeak (protocols/tasks.md): every transition is
 * a signed message sent at-least-once, and every task is kept in LevelDB on
 * both sides. Claims are decided by the offerer's ClaimArbiter (arbiter.ts)
 * and made by the Claimant (claimant.ts); this class holds the public API and
 * the inbound dispatch.
 */
export class DefaultTaskService extends TaskCore implements TaskService {
  private readonly arbiter: ClaimArbiter
  private readonly claimant: Claimant
  private readonly maxOpenOffers: number
  private markReady: () => void = () => {}
  /** Inbound task messages wait for start(): sending needs the node's delivery */
  private readonly ready = new Promise<void>(resolve => { this.markReady = resolve })

  constructor (components: TaskServiceComponents, init: TaskServiceInit = {}) {
    super(components, init)
    this.arbiter = new ClaimArbiter(this)
    this.claimant = new Claimant(this, init.claimRetryInterval ?? CLAIM_RETRY_INTERVAL)
    this.maxOpenOffers = init.maxOpenOffersPerPeer ?? MAX_OPEN_OFFERS_PER_PEER
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
      if (!TERMINAL_STATES.has(record.state)) this.armExpiry(record)
    }
    this.arbiter.resendUnsentGrants()
    this.claimant.start()
  }

  /** Whether `message` is a task-protocol message this service answers (the node then does not refuse it as unhandled) */
  handles (message: MoltMessage): boolean {
    return isTaskMessage(message)
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

  async offer (target: OfferTarget, init: TaskInit, options: { signal?: AbortSignal } = {}): Promise<TaskRecord> {
    if (isTopicTarget(target)) return this.offerToTopic(target.topic, init)
    const inputs = Array.isArray(target) ? target : [target]
    if (inputs.length === 0 || inputs.length > MAX_OFFER_PEERS) throw new InvalidTaskError(`offer to 1 to ${MAX_OFFER_PEERS} agents`, 'peers')
    const resolved = await Promise.all(inputs.map(async p => this.node.resolvePeer(p, options)))
    const offeredTo = [...new Set(resolved.map(p => p.toString()))]
    if (offeredTo.includes(this.node.peerId.toString())) throw new InvalidTaskError('a task cannot be offered to this node itself', 'peers')
    const record = await this.create(init, { offeredTo })
    const message = offerMessage(record, taskFields(init as Record<string, unknown>))
    // sent without the task's lock: claims that race the later offers are arbitrated meanwhile
    const sent = await Promise.allSettled(offeredTo.map(async peer => this.send(peer, message)))
    return this.locked(record.id, async () => {
      const current = this.mustGet(record.id)
      const next = structuredClone(current)
      sent.forEach((outcome, i) => {
        if (outcome.status === 'fulfilled') addMessage(next, 'offer', outcome.value.id, offeredTo[i])
        else this.log('could not offer %s to %s - %e', record.id, offeredTo[i], outcome.reason)
      })
      if (next.messages.length === current.messages.length) {
        throw new AggregateError(sent.map(s => (s as PromiseRejectedResult).reason), `task ${record.id} could not be offered to any agent`)
      }
      return this.markOffered(current, next)
    })
  }

  /** Publish the offer on a team topic: any member may claim it, the arbitration is the same */
  private async offerToTopic (topic: string, init: TaskInit): Promise<TaskRecord> {
    const topics = this.components.topics?.()
    if (topics == null) throw new InvalidTaskError('team topics are not available on this node', 'topic')
    // the name is checked before anything is stored
    if (typeof topic !== 'string' || !TOPIC_NAME_PATTERN.test(topic)) throw new InvalidTaskError(`topic must match ${String(TOPIC_NAME_PATTERN)}`, 'topic')
    const record = await this.create(init, { topic })
    let published: { id: string }
    try {
      published = await topics.publish(topic, offerMessage(record, taskFields(init as Record<string, unknown>)))
    } catch (err) {
      await this.locked(record.id, async () => this.finish(structuredClone(this.mustGet(record.id)), 'cancelled', { error: { code: 'E_TASK_CLOSED', message: 'the offer could not be published' } }))
      throw err
    }
    return this.locked(record.id, async () => {
      const current = this.mustGet(record.id)
      const next = structuredClone(current)
      addMessage(next, 'offer', published.id, `topic:${topic}`)
      return this.markOffered(current, next)
    })
  }

  async accept (taskId: string, options: ClaimOptions = {}): Promise<TaskRecord> {
    return this.claim(taskId, options)
  }

  async claim (taskId: string, options: ClaimOptions = {}): Promise<TaskRecord> {
    return this.claimant.claim(taskId, options)
  }

  async progress (taskId: string, update: { progress?: number, note?: string }): Promise<TaskRecord> {
    const progress = update.progress
    if (progress !== undefined && (typeof progress !== 'number' || !(progress >= 0 && progress <= 1))) throw new InvalidTaskError('progress must be a number from 0 to 1', 'progress')
    const note = optionalText(update.note, MAX_TEXT_LENGTH, 'note')
    return this.locked(taskId, async () => {
      const next = structuredClone(this.granted(taskId))
      const first = next.state === 'claimed'
      const sent = await this.send(next.offerer, progressMessage(taskId, progress, note))
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
      const sent = await this.send(next.offerer, completeMessage(next, result))
      addMessage(next, 'complete', sent.id, next.offerer)
      return this.finish(next, 'completed', { result })
    })
  }

  async fail (taskId: string, reason: string): Promise<TaskRecord> {
    const message = optionalText(reason, MAX_TEXT_LENGTH, 'reason') ?? 'task failed'
    return this.locked(taskId, async () => {
      const next = structuredClone(this.granted(taskId))
      const sent = await this.send(next.offerer, failMessage(next, message))
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
    const message = cancelMessage(taskId, text)
    const topics = this.components.topics?.()
    if (record.topic !== undefined && record.worker == null && topics != null) {
      await topics.publish(record.topic, message).catch((err: Error) => { this.log('could not tell topic %s of the cancellation of %s - %e', record.topic, taskId, err) })
    }
    await Promise.all(recipients.map(async peer => this.send(peer, message).catch((err: Error) => {
      this.log('could not tell %s of the cancellation of %s - %e', peer, taskId, err)
    })))
    return record
  }

  /** Check an offer's fields and store it as `created` (offerer side) */
  private async create (init: TaskInit, target: { offeredTo?: string[], topic?: string }): Promise<TaskRecord> {
    const id = init.id ?? randomUUID()
    if (!TASK_ID_PATTERN.test(id)) throw new InvalidTaskError(`task id must match ${String(TASK_ID_PATTERN)}`, 'id')
    const fields = taskFields(init as Record<string, unknown>)
    const now = Date.now()
    if (init.deadline !== undefined && init.deadline <= now) throw new InvalidTaskError('deadline is in the past', 'deadline')
    const record: TaskRecord = {
      id,
      role: 'offerer',
      state: 'created',
      offerer: this.node.peerId.toString(),
      ...target,
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
    return record
  }

  /** The offer left: `created` → `offered` (called under the task's lock) */
  private async markOffered (current: TaskRecord, next: TaskRecord): Promise<TaskRecord> {
    if (next.state === 'created') next.state = 'offered'
    await this.store.save(next)
    if (current.state === 'created') this.emit('offered', next)
    return structuredClone(next)
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
      .then(async () => this.locked(taskId, async () => this.inbound(evt.detail, taskId)))
      .catch((err: Error) => { this.log.error('task message %s from %s failed - %e', message.id, peer, err) })
  }

  private async inbound (entry: ReceivedMessage, taskId: string): Promise<void> {
    if (this.stopped) return
    const { message, peer } = entry
    const p = message.p
    if (message.op === 'respond') return this.onFinished(peer, message, taskId, p.status === 'success' ? 'completed' : 'failed')
    if (message.op === 'error') {
      return p.code === 'E_TASK_FAILED' ? this.onFinished(peer, message, taskId, 'failed') : this.claimant.onRefused(peer, message, taskId)
    }
    switch (p.step) {
      case 'offer': return p.action === 'create' ? this.onOffer(peer, message, taskId, entry.topic) : undefined
      case 'claim': return this.arbiter.onClaim(peer, message, taskId)
      case 'grant': return this.claimant.onGrant(peer, message, taskId)
      case 'progress': return this.onProgress(peer, message, taskId)
      case 'cancel': return p.action === 'cancel' ? this.onCancel(peer, taskId) : undefined
      default:
    }
  }

  private async onOffer (peer: string, message: MoltMessage, taskId: string, topic: string | undefined): Promise<void> {
    if (this.store.get(taskId) != null) return // a re-sent offer, or an id clash: the first record stands
    if (this.openOffers(peer) >= this.maxOpenOffers) {
      this.log('ignoring offer %s from %s: %d of its tasks are open here', message.id, peer, this.maxOpenOffers)
      return
    }
    let fields: ReturnType<typeof taskFields>
    try {
      fields = taskFields(message.p)
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
      ...(topic !== undefined ? { topic } : {}),
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

  private openOffers (peer: string): number {
    let open = 0
    for (const record of this.store.all()) {
      if (record.role === 'worker' && record.offerer === peer && !TERMINAL_STATES.has(record.state)) open++
    }
    return open
  }

  private readonly onStop = (): void => {
    this.stopped = true
    this.claimant.stop()
    this.disarmAll()
    this.node.removeEventListener('message', this.onMessage)
  }
}

function isTopicTarget (target: OfferTarget): target is { topic: string } {
  return typeof target === 'object' && target !== null && !Array.isArray(target) && 'topic' in target && !('toMultihash' in target)
}
