import type { MoltMessage } from '../../moltspeak/index.js'
import { TASK_ERROR_CODES, TERMINAL_STATES } from './constants.js'
import { addMessage, grantMessage, MAX_SHORT_TEXT, refusalMessage } from './codec.js'
import type { TaskCore } from './core.js'

/**
 * The offerer's side of "first agent wins": claims of one task are decided
 * one at a time (under the task's lock); the first valid one is granted and
 * the grant fsynced before it leaves, every later one refused with a defined
 * error at once. A re-sent claim of the winner gets the same grant again, so
 * a crash between decision and grant is repaired by either side retrying.
 */
export class ClaimArbiter {
  constructor (private readonly core: TaskCore) {}

  /** At start: grants decided before a crash but never handed to delivery are sent now */
  resendUnsentGrants (): void {
    for (const record of this.core.store.all()) {
      if (record.role !== 'offerer' || TERMINAL_STATES.has(record.state) || record.grant == null || record.grant.sent === true) continue
      void this.core.locked(record.id, async () => this.sendGrant(record.id, undefined))
        .catch(err => { this.core.log('could not re-send the grant of %s - %e', record.id, err) })
    }
  }

  /** Decide one claim (called under the task's lock) */
  async onClaim (peer: string, message: MoltMessage, taskId: string): Promise<void> {
    const core = this.core
    const claimId = message.p.claim_id
    if (typeof claimId !== 'string' || claimId.length === 0 || claimId.length > MAX_SHORT_TEXT) return
    const current = core.store.get(taskId)
    if (current?.role !== 'offerer') return this.refuse(peer, message, taskId, TASK_ERROR_CODES.UNKNOWN, 'no such task')
    if (!mayClaim(current, peer)) return this.refuse(peer, message, taskId, TASK_ERROR_CODES.NOT_OFFERED, 'the task was not offered to you')
    core.dispatchEvent(new CustomEvent('claim', { detail: { task: structuredClone(current), claimant: peer } }))
    if (current.grant != null) {
      // idempotent: the winner's re-sent claim gets the same grant again
      if (current.grant.claimant === peer) return this.sendGrant(taskId, message.id)
      return this.refuse(peer, message, taskId, TASK_ERROR_CODES.CLAIMED, 'the task was granted to another agent')
    }
    if (TERMINAL_STATES.has(current.state)) return this.refuse(peer, message, taskId, TASK_ERROR_CODES.CLOSED, `the task is ${current.state}`)
    if (Date.now() >= current.deadline) {
      await core.finish(structuredClone(current), 'expired', {})
      return this.refuse(peer, message, taskId, TASK_ERROR_CODES.CLOSED, 'the task is expired')
    }
    const next = structuredClone(current)
    next.grant = { claimant: peer, claimId, grantedAt: Date.now() }
    next.worker = peer
    next.state = 'claimed'
    await core.store.save(next, { sync: true })
    core.emit('claimed', next)
    await this.sendGrant(taskId, message.id)
  }

  private async refuse (peer: string, claim: MoltMessage, taskId: string, code: string, text: string): Promise<void> {
    await this.core.send(peer, refusalMessage(claim, taskId, code, text))
  }

  /** Send (again) the grant the store holds; `re` is the claim it answers */
  private async sendGrant (taskId: string, re: string | undefined): Promise<void> {
    const grant = this.core.mustGet(taskId).grant
    if (grant == null) return
    const sent = await this.core.send(grant.claimant, grantMessage(taskId, grant, re))
    const next = structuredClone(this.core.mustGet(taskId))
    addMessage(next, 'grant', sent.id, grant.claimant)
    if (next.grant != null) next.grant.sent = true
    await this.core.store.save(next)
  }
}

/** An agent the task was offered to (by name, or as a member of its topic) may claim it */
function mayClaim (record: { offeredTo?: string[], topic?: string, offerer: string }, peer: string): boolean {
  if (record.offeredTo?.includes(peer) === true) return true
  return record.topic !== undefined && peer !== record.offerer
}
