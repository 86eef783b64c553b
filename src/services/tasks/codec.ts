import { errorPayload, respond, task as taskPayload, TASK_PRIORITIES, type ErrorCode, type MoltMessage, type TaskPriority } from '../../moltspeak/index.js'
import type { MessageInit } from '../../node/message-types.js'
import { DEFAULT_TASK_TTL, MAX_TASK_TTL, MAX_TEXT_LENGTH, TASK_ID_PATTERN, TASK_STEPS } from './constants.js'
import { InvalidTaskError } from './errors.js'
import type { TaskRecord } from './store.js'

/** Transition ids kept per task (a claimant re-sending many claims must not grow a record without bound) */
export const MAX_MESSAGE_IDS = 64
/** Longest task `type` and claim id, in characters */
export const MAX_SHORT_TEXT = 128

/** The descriptive fields of a task */
export type TaskFields = Pick<TaskRecord, 'type' | 'description' | 'params' | 'priority'>

/** Whether `message` is a task-protocol message (protocols/tasks.md, "Messages") */
export function isTaskMessage (message: MoltMessage): boolean {
  return message.op === 'task' && typeof message.p.step === 'string' && (TASK_STEPS as readonly string[]).includes(message.p.step) && taskIdOf(message) !== undefined
}

/** The task id a message is about: `p.task_id`, or `p.context.task_id` of an error */
export function taskIdOf (message: MoltMessage): string | undefined {
  const p = message.p
  const id = message.op === 'error'
    ? (typeof p.context === 'object' && p.context !== null ? (p.context as Record<string, unknown>).task_id : undefined)
    : p.task_id
  return typeof id === 'string' && TASK_ID_PATTERN.test(id) ? id : undefined
}

/** The descriptive fields of a task, checked (offer() and inbound offers alike) */
export function taskFields (p: Record<string, unknown>): TaskFields {
  const error = (field: string, why: string): Error => new InvalidTaskError(`${field} ${why}`, field)
  const fields: TaskFields = {}
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
export function deadlineOf (deadline: number | undefined, now: number): number {
  return Math.min(deadline ?? now + DEFAULT_TASK_TTL, now + MAX_TASK_TTL)
}

export function optionalText (value: unknown, max: number, field: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length > max) throw new InvalidTaskError(`${field} must be a string of at most ${max} characters`, field)
  return value
}

/** Remember the id of a transition's message (the newest MAX_MESSAGE_IDS) */
export function addMessage (record: TaskRecord, step: string, id: string, peer: string): void {
  record.messages = [...record.messages, { step, id, peer }].slice(-MAX_MESSAGE_IDS)
}

// --- the messages of each transition (protocols/tasks.md) --------------------

function taskMessage (p: Record<string, unknown>, re?: string): MessageInit {
  return { op: 'task', ...(re !== undefined ? { re } : {}), p: taskPayload(p as any) as Record<string, unknown> }
}

export function offerMessage (record: TaskRecord, fields: TaskFields): MessageInit {
  return taskMessage({ action: 'create', task_id: record.id, ...fields, deadline: record.deadline, step: 'offer' })
}

export function claimMessage (taskId: string, claimId: string): MessageInit {
  return taskMessage({ action: 'status', task_id: taskId, step: 'claim', claim_id: claimId })
}

export function grantMessage (taskId: string, grant: { claimant: string, claimId: string, grantedAt: number }, re: string | undefined): MessageInit {
  return taskMessage({ action: 'status', task_id: taskId, step: 'grant', claimant: grant.claimant, claim_id: grant.claimId, granted_at: grant.grantedAt }, re)
}

export function progressMessage (taskId: string, progress: number | undefined, note: string | undefined): MessageInit {
  return taskMessage({ action: 'status', task_id: taskId, step: 'progress', ...(progress !== undefined ? { progress } : {}), ...(note !== undefined ? { note } : {}) })
}

export function cancelMessage (taskId: string, reason: string | undefined): MessageInit {
  return taskMessage({ action: 'cancel', task_id: taskId, step: 'cancel', ...(reason !== undefined ? { reason } : {}) })
}

export function completeMessage (record: TaskRecord, result: unknown): MessageInit {
  return {
    op: 'respond',
    re: record.offerMessage,
    p: respond({ status: 'success', task_id: record.id, ...(result !== undefined ? { data: result } : {}) }) as Record<string, unknown>
  }
}

export function failMessage (record: TaskRecord, message: string): MessageInit {
  return {
    op: 'error',
    re: record.offerMessage,
    p: errorPayload('E_TASK_FAILED', message, { context: { task_id: record.id } }) as unknown as Record<string, unknown>
  }
}

/** A claim refusal: an `error` answering the claim, with the task and claim ids in its context */
export function refusalMessage (claim: MoltMessage, taskId: string, code: string, text: string): MessageInit {
  return {
    op: 'error',
    re: claim.id,
    p: errorPayload(code as ErrorCode, text, { recoverable: false, context: { task_id: taskId, claim_id: claim.p.claim_id } }) as unknown as Record<string, unknown>
  }
}
