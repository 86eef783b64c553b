import type { MoltNode } from '../node.js'
import type { ErrorCode } from '../moltspeak/index.js'
import { HttpError } from './errors.js'
import { invalid, missing, optionalBoolean, optionalInteger, parsePeer, queryInteger, queryString, requireObject } from './validate.js'
import type { Method, Route, RouteContext } from './route.js'
import { MAX_OFFER_PEERS, TASK_STATES, type TaskInit, type TaskRecord, type TaskState } from '../services/tasks/index.js'

const MAX_LIST = 1000
/** Longest wait a client may ask of a claim */
const MAX_CLAIM_TIMEOUT_MS = 10 * 60 * 1000
const ACTIONS = ['claim', 'progress', 'complete', 'fail', 'cancel'] as const

/**
 * GET|POST /v1/tasks (list, offer), GET|POST /v1/tasks/{id} (show, and
 * `{action: claim|progress|complete|fail|cancel, …}`): protocols/tasks.md, "Local API"
 */
export function taskRoutes (node: MoltNode): Array<[string, Partial<Record<Method, Route>>]> {
  const list = async ({ url }: RouteContext): Promise<unknown> => {
    const role = queryString(url.searchParams, 'role', 16)
    if (role !== undefined && role !== 'offerer' && role !== 'worker') throw invalid('role', 'must be offerer or worker')
    const state = queryString(url.searchParams, 'state', 16)
    if (state !== undefined && !(TASK_STATES as readonly string[]).includes(state)) throw invalid('state', `must be one of ${TASK_STATES.join(', ')}`)
    const limit = queryInteger(url.searchParams, 'limit', 100, 1, MAX_LIST)
    return { tasks: node.tasks.list({ role, state: state as TaskState | undefined, limit }) }
  }

  const offer = async ({ body, signal }: RouteContext): Promise<unknown> => {
    const fields = requireObject(body, ['to', 'topic', 'task'])
    if (fields.topic !== undefined) {
      if (fields.to !== undefined) throw invalid('topic', 'and to are exclusive: offer to agents or to a topic')
      if (typeof fields.topic !== 'string') throw invalid('topic', 'must be a topic name')
      const task = requireObject(fields.task ?? {}, ['id', 'type', 'description', 'params', 'deadline', 'priority'], 'task')
      return mapErrors(async () => node.tasks.offer({ topic: fields.topic as string }, task as TaskInit, { signal }))
    }
    if (fields.to === undefined) throw missing('to')
    const to = Array.isArray(fields.to) ? fields.to : [fields.to]
    if (to.length === 0 || to.length > MAX_OFFER_PEERS) throw invalid('to', `must name 1 to ${MAX_OFFER_PEERS} agents`)
    const peers = to.map((peer, i) => parsePeer(peer, Array.isArray(fields.to) ? `to[${i}]` : 'to'))
    const task = requireObject(fields.task ?? {}, ['id', 'type', 'description', 'params', 'deadline', 'priority'], 'task')
    return mapErrors(async () => node.tasks.offer(peers, task as TaskInit, { signal }))
  }

  const show = async ({ url }: RouteContext): Promise<unknown> => {
    const id = taskId(url)
    const record = node.tasks.get(id)
    if (record == null) throw new HttpError(404, 'E_TASK_UNKNOWN' as ErrorCode, `no task ${id}`)
    return record
  }

  const act = async ({ url, body, signal }: RouteContext): Promise<TaskRecord> => {
    const id = taskId(url)
    const fields = requireObject(body, ['action', 'wait', 'timeoutMs', 'progress', 'note', 'result', 'reason'])
    const action = fields.action
    if (action === undefined) throw missing('action')
    if (!(ACTIONS as readonly unknown[]).includes(action)) throw invalid('action', `must be one of ${ACTIONS.join(', ')}`)
    return mapErrors(async () => {
      switch (action) {
        case 'claim': return node.tasks.claim(id, {
          wait: optionalBoolean(fields.wait, 'wait'),
          timeout: optionalInteger(fields.timeoutMs, 'timeoutMs', 1, MAX_CLAIM_TIMEOUT_MS),
          signal
        })
        case 'progress': return node.tasks.progress(id, { progress: fields.progress as number | undefined, note: fields.note as string | undefined })
        case 'complete': return node.tasks.complete(id, fields.result)
        case 'fail': return node.tasks.fail(id, fields.reason as string)
        default: return node.tasks.cancel(id, fields.reason as string | undefined)
      }
    })
  }

  return [
    ['/v1/tasks', { GET: { handler: list }, POST: { handler: offer } }],
    ['/v1/tasks/*', { GET: { handler: show }, POST: { handler: act } }]
  ]
}

function taskId (url: URL): string {
  let id: string
  try {
    id = decodeURIComponent(url.pathname.slice('/v1/tasks/'.length))
  } catch {
    throw invalid('id', 'is not valid percent-encoding')
  }
  if (id.length === 0 || id.length > 128) throw invalid('id', 'must be 1 to 128 characters')
  return id
}

/** The task service's errors a client can cause, as statuses with their codes */
async function mapErrors<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err: any) {
    switch (err?.name) {
      case 'InvalidTaskError': throw new HttpError(400, 'E_INVALID_PARAM', err.message, err.field)
      case 'InvalidTopicError': throw new HttpError(400, 'E_INVALID_PARAM', err.message, 'topic')
      case 'InvalidParametersError': throw new HttpError(400, 'E_INVALID_PARAM', err.message)
      case 'TaskNotFoundError': throw new HttpError(404, 'E_TASK_UNKNOWN' as ErrorCode, err.message)
      case 'TaskStateError': throw new HttpError(409, 'E_INVALID_PARAM', err.message)
      case 'TaskClaimRefusedError': throw new HttpError(409, err.code as ErrorCode, err.message)
      case 'TaskStoreFullError': throw new HttpError(507, 'E_RATE_LIMIT', err.message)
      default: throw err
    }
  }
}
