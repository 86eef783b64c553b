import { randomUUID } from 'node:crypto'
import type { MoltMessage } from '../../moltspeak/index.js'
import { RequestTimeoutError } from '../../errors.js'
import { DEFAULT_CLAIM_TIMEOUT, MAX_TEXT_LENGTH, TASK_ERROR_CODES, TERMINAL_STATES } from './constants.js'
import { addMessage, claimMessage, MAX_MESSAGE_IDS } from './codec.js'
import type { TaskCore } from './core.js'
import { TaskClaimRefusedError, TaskStateError } from './errors.js'
import type { TaskRecord } from './store.js'

export interface ClaimOptions {
  /** Wait for the offerer's grant or refusal. @default true */
  wait?: boolean
  /** ms to wait for the decision. @default 30000 */
  timeout?: number
  signal?: AbortSignal
}

/**
 * The claimant's side: a claim is written before it leaves (after a restart
 * it is retried under the same `claim_id`, never made anew), re-sent while
 * the offerer acknowledged it without deciding, and settled by the grant or
 * the refusal that answers it.
 */
export class Claimant {
  private retryTimer?: ReturnType<typeof setInterval>

  constructor (private readonly core: TaskCore, private readonly retryInterval: number) {}

  /** Once the node can send: claims undecided before a restart are re-sent every retryInterval */
  start (): void {
    for (const record of this.core.store.all()) {
      if (record.role === 'worker' && record.state === 'offered' && record.claim != null) this.core.awaitingDecision.add(record.id)
    }
    this.retryTimer = setInterval(() => { this.retryClaims() }, this.retryInterval)
    this.retryTimer.unref?.()
  }

  stop (): void {
    clearInterval(this.retryTimer)
  }

  async claim (taskId: string, options: ClaimOptions = {}): Promise<TaskRecord> {
    const core = this.core
    // listen before sending: the decision may come back before send() resolves
    const decided = options.wait === false ? undefined : this.decision(taskId, options)
    decided?.catch(() => {})
    try {
      const record = await core.locked(taskId, async () => {
        const current = core.worker(taskId)
        if (current.state !== 'offered') return current
        const next = structuredClone(current)
        next.claim ??= { id: randomUUID(), at: Date.now(), messages: [] }
        // the claim is on disk before it leaves: after a restart it is retried, never made anew
        await core.store.save(next)
        return this.sendClaim(next)
      })
      if (record.state === 'refused') throw refusedError(record)
      if (record.state !== 'offered') {
        if (record.state === 'claimed' || record.state === 'running' || record.state === 'completed' || record.state === 'failed') return record
        throw new TaskStateError(`task ${taskId} is ${record.state}`)
      }
      return decided == null ? record : await decided
    } finally {
      decided?.cancel()
    }
  }

  /** The offerer granted our claim (called under the task's lock) */
  async onGrant (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const core = this.core
    const current = core.store.get(taskId)
    const p = message.p
    if (current?.role !== 'worker' || current.offerer !== peer || current.claim == null) return
    if (p.claimant !== core.node.peerId.toString() || p.claim_id !== current.claim.id) return
    if (current.state !== 'offered') return // granted already: the same grant again
    const next = structuredClone(current)
    next.state = 'claimed'
    next.worker = core.node.peerId.toString()
    next.grant = { claimant: next.worker, claimId: current.claim.id, grantedAt: Number(p.granted_at) }
    addMessage(next, 'grant', message.id, peer)
    await core.store.save(next)
    core.awaitingDecision.delete(taskId)
    core.emit('claimed', next)
  }

  /** The offerer refused our claim: the task is `refused` here at once (called under the task's lock) */
  async onRefused (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const current = this.core.store.get(taskId)
    if (current?.role !== 'worker' || current.offerer !== peer || current.state !== 'offered' || current.claim == null) return
    const context = message.p.context as Record<string, unknown>
    if (context.claim_id !== current.claim.id) return
    const next = structuredClone(current)
    addMessage(next, 'refused', message.id, peer)
    await this.core.finish(next, 'refused', { error: { code: String(message.p.code), message: String(message.p.message).slice(0, MAX_TEXT_LENGTH) } })
  }

  private async sendClaim (record: TaskRecord): Promise<TaskRecord> {
    const core = this.core
    const claim = record.claim
    if (claim == null) return record
    const sent = await core.send(record.offerer, claimMessage(record.id, claim.id))
    claim.messages = [...claim.messages, sent.id].slice(-MAX_MESSAGE_IDS)
    addMessage(record, 'claim', sent.id, record.offerer)
    // only an acknowledged claim needs re-sending; a queued or stored one is the outbox's to deliver
    if (sent.status === 'delivered') core.awaitingDecision.add(record.id)
    else core.awaitingDecision.delete(record.id)
    await core.store.save(record)
    return structuredClone(record)
  }

  private retryClaims (): void {
    const core = this.core
    for (const taskId of core.awaitingDecision) {
      void core.locked(taskId, async () => {
        const current = core.store.get(taskId)
        if (current?.role !== 'worker' || current.state !== 'offered' || current.claim == null) {
          core.awaitingDecision.delete(taskId)
          return
        }
        await this.sendClaim(structuredClone(current))
      }).catch((err: Error) => { core.log('could not re-send the claim of %s - %e', taskId, err) })
    }
  }

  /** Resolves with the record once claimed; rejects when refused, closed, timed out or aborted */
  private decision (taskId: string, options: ClaimOptions): Promise<TaskRecord> & { cancel: () => void } {
    const core = this.core
    const timeout = options.timeout ?? DEFAULT_CLAIM_TIMEOUT
    let cancel = (): void => {}
    const promise = new Promise<TaskRecord>((resolve, reject) => {
      const signal = AbortSignal.any([...(options.signal != null ? [options.signal] : []), AbortSignal.timeout(timeout)])
      const onChange = (evt: CustomEvent<TaskRecord>): void => {
        const record = evt.detail
        if (record.id !== taskId || record.role !== 'worker') return
        if (record.state === 'claimed') resolve(record)
        else if (record.state === 'refused') reject(refusedError(record))
        else if (TERMINAL_STATES.has(record.state)) reject(new TaskStateError(`task ${taskId} is ${record.state}`))
      }
      const onAbort = (): void => {
        reject(options.signal?.aborted === true ? options.signal.reason : new RequestTimeoutError(`no decision on the claim of ${taskId} within ${timeout} ms`))
      }
      cancel = () => {
        core.removeEventListener('change', onChange as any)
        signal.removeEventListener('abort', onAbort)
      }
      core.addEventListener('change', onChange as any)
      signal.addEventListener('abort', onAbort, { once: true })
    })
    promise.then(cancel, cancel)
    return Object.assign(promise, { cancel: () => { cancel() } })
  }
}

function refusedError (record: TaskRecord): TaskClaimRefusedError {
  return new TaskClaimRefusedError(record.error?.message ?? 'claim refused', record.error?.code ?? TASK_ERROR_CODES.CLAIMED)
}
