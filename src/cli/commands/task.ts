import { openLocalApi } from './task-api.js'
import type { TaskInit, TaskRecord } from '../../services/tasks/index.js'
import { integerFlag, stringFlag, booleanFlag } from '../args.js'
import { UsageError } from '../errors.js'
import type { Command } from '../command.js'

const SUBCOMMANDS = ['offer', 'list', 'show', 'claim', 'progress', 'complete', 'fail', 'cancel'] as const
/** Exit code of a claim the offerer refused (another agent won it, or it was not offered to us) */
const EXIT_REFUSED = 3

export const taskCommand: Command = {
  spec: {
    name: 'task',
    args: '<offer|list|show|claim|progress|complete|fail|cancel> …',
    details: [
      'molt task offer <peer>…|--topic <name> [--type t] [--description d] [--params JSON] [--priority p] [--ttl <s>] [--id id]',
      '                                 offer one task to one or more agents; the first valid claim wins it',
      'molt task list [--role offerer|worker] [--state s] [--limit n]   tasks this agent knows, newest first',
      'molt task show <id>              one task: state, offerer, worker, grant, result, messages',
      'molt task claim <id> [--no-wait] [--timeout <ms>]   claim a task offered to this agent',
      'molt task progress <id> [--progress 0..1] [--note text]',
      'molt task complete <id> [--result JSON]   send the result to the offerer',
      'molt task fail <id> --reason text',
      'molt task cancel <id> [--reason text]     offerer only',
      '',
      'States: created, offered, claimed, running, completed, failed, cancelled, expired, refused',
      '(protocols/tasks.md). Every transition is a signed MoltSpeak message sent at-least-once.',
      'Uses the running agent (molt agent) through its local API, else a short-lived node: an',
      'offerer must be running to arbitrate claims, so offer from a running agent.',
      `Exit codes: 0 ok, 1 failure, 2 bad command line, ${EXIT_REFUSED} claim refused (E_TASK_CLAIMED: another agent won).`,
      'With --json each result is one JSON object (a task record, or {"tasks":[…]}).'
    ].join('\n'),
    options: {
      id: { type: 'string', arg: '<id>', description: 'offer: the task id (default: a random UUID)' },
      topic: { type: 'string', arg: '<name>', description: 'offer: to every member of this team topic instead of named agents (protocols/topics.md)' },
      type: { type: 'string', arg: '<type>', description: 'offer: the kind of work, e.g. translate.text' },
      description: { type: 'string', arg: '<text>', description: 'offer: what to do' },
      params: { type: 'string', arg: '<json>', description: 'offer: parameters, a JSON object' },
      priority: { type: 'string', arg: '<p>', description: 'offer: low, normal, high or urgent' },
      ttl: { type: 'string', arg: '<s>', description: 'offer: seconds until the task expires (default 7 days)' },
      role: { type: 'string', arg: '<role>', description: 'list: offerer or worker' },
      state: { type: 'string', arg: '<state>', description: 'list: only tasks in this state' },
      limit: { type: 'string', arg: '<n>', description: 'list: at most this many (default 100)' },
      'no-wait': { type: 'boolean', description: 'claim: return once the claim is sent, without waiting for the decision' },
      timeout: { type: 'string', arg: '<ms>', description: 'claim: how long to wait for the decision (default 30000)' },
      progress: { type: 'string', arg: '<0..1>', description: 'progress: fraction done' },
      note: { type: 'string', arg: '<text>', description: 'progress: a note for the offerer' },
      result: { type: 'string', arg: '<json>', description: 'complete: the result (JSON; plain text is sent as a string)' },
      reason: { type: 'string', arg: '<text>', description: 'fail/cancel: why' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const [sub, ...rest] = args.positionals
    if (sub === undefined) throw new UsageError('molt task needs a subcommand (see molt task --help)')
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}" (see molt task --help)`)
    const topic = stringFlag(args.values, 'topic')
    if (topic !== undefined && (sub !== 'offer' || rest.length > 0)) throw new UsageError('--topic is for molt task offer, instead of <peer>…')
    if (sub === 'offer' && rest.length === 0 && topic === undefined) throw new UsageError('molt task offer needs at least one <peer>, or --topic <name>')
    if (sub === 'list' && rest.length > 0) throw new UsageError('unexpected argument (see molt task --help)')
    if (sub !== 'offer' && sub !== 'list' && rest.length !== 1) throw new UsageError(`molt task ${sub} needs exactly one <id>`)
    const v = args.values
    const request = sub === 'offer' ? offerInit(v) : undefined
    const tasks = await openTasks(dataDir, signal)
    try {
      if (sub === 'list') {
        const records = await tasks.list({
          role: stringFlag(v, 'role'),
          state: stringFlag(v, 'state'),
          limit: integerFlag(stringFlag(v, 'limit'), 'limit', 1, 1000)
        })
        out.result(records.length === 0 ? 'no tasks' : records.map(formatTask), { tasks: records })
        return
      }
      let record: TaskRecord
      const id = rest[0]
      if (sub === 'offer') record = await tasks.post('', topic !== undefined ? { topic, task: request } : { to: rest, task: request })
      else if (sub === 'show') record = await tasks.show(id)
      else {
        const body: Record<string, unknown> = { action: sub }
        if (sub === 'claim') {
          if (booleanFlag(v, 'no-wait')) body.wait = false
          body.timeoutMs = integerFlag(stringFlag(v, 'timeout'), 'timeout', 1, 600_000)
        } else if (sub === 'progress') {
          const progress = stringFlag(v, 'progress')
          if (progress !== undefined) {
            body.progress = Number(progress)
            if (!(body.progress as number >= 0 && body.progress as number <= 1)) throw new UsageError('--progress must be a number from 0 to 1')
          }
          body.note = stringFlag(v, 'note')
        } else if (sub === 'complete') {
          const result = stringFlag(v, 'result')
          if (result !== undefined) body.result = parseLoose(result)
        } else {
          body.reason = stringFlag(v, 'reason')
          if (sub === 'fail' && body.reason === undefined) throw new UsageError('molt task fail needs --reason')
        }
        try {
          record = await tasks.post(`/${encodeURIComponent(id)}`, body)
        } catch (err: any) {
          if (sub === 'claim' && err.status === 409 && typeof err.code === 'string' && err.code.startsWith('E_TASK_')) {
            out.error(err.code, err.message)
            return EXIT_REFUSED
          }
          throw err
        }
      }
      out.result(formatDetail(record), record)
    } finally {
      await tasks.close()
    }
  }
}

interface TaskAccess {
  list(query: { role?: string, state?: string, limit?: number }): Promise<TaskRecord[]>
  show(id: string): Promise<TaskRecord>
  /** POST /v1/tasks (offer) or /v1/tasks/{id} (an action) */
  post(path: string, body: Record<string, unknown>): Promise<TaskRecord>
  close(): Promise<void>
}

/** The running agent's API when there is one, else a short-lived node answering through the same routes */
async function openTasks (dataDir: string, signal: AbortSignal): Promise<TaskAccess> {
  const api = await openLocalApi(dataDir, signal, '/v1/tasks')
  return {
    list: async (q) => (await api.call<{ tasks: TaskRecord[] }>('GET', `?${new URLSearchParams(defined(q)).toString()}`)).tasks,
    show: async (id) => api.call('GET', `/${encodeURIComponent(id)}`),
    post: async (path, body) => api.call('POST', path, body),
    close: async () => { await api.close() }
  }
}

function offerInit (v: Record<string, unknown>): TaskInit {
  const params = stringFlag(v as any, 'params')
  let parsed: unknown
  if (params !== undefined) {
    parsed = parseLoose(params)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('--params must be a JSON object')
  }
  const ttl = integerFlag(stringFlag(v as any, 'ttl'), 'ttl', 1, 30 * 86_400)
  return defined({
    id: stringFlag(v as any, 'id'),
    type: stringFlag(v as any, 'type'),
    description: stringFlag(v as any, 'description'),
    params: parsed,
    priority: stringFlag(v as any, 'priority'),
    deadline: ttl !== undefined ? Date.now() + ttl * 1000 : undefined
  }) as TaskInit
}

/** JSON when it parses, else the text itself */
function parseLoose (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

function formatTask (t: TaskRecord): string {
  const other = t.role === 'offerer' ? (t.worker != null ? `→ ${t.worker}` : t.topic !== undefined ? `→ topic ${t.topic}` : `→ ${t.offeredTo?.length ?? 0} agents`) : `from ${t.offerer}`
  return `${t.id} ${t.state} ${t.role}${t.type !== undefined ? ` [${t.type}]` : ''} ${other} ${new Date(t.updatedAt).toISOString()}`
}

function formatDetail (t: TaskRecord): string[] {
  return [
    formatTask(t),
    ...(t.description !== undefined ? [`  description: ${t.description}`] : []),
    ...(t.grant != null ? [`  granted to ${t.grant.claimant} at ${new Date(t.grant.grantedAt).toISOString()}`] : []),
    ...(t.progress !== undefined || t.note !== undefined ? [`  progress: ${t.progress ?? '-'} ${t.note ?? ''}`] : []),
    ...(t.result !== undefined ? [`  result: ${JSON.stringify(t.result)}`] : []),
    ...(t.error != null ? [`  error: ${t.error.code} ${t.error.message}`] : []),
    `  deadline: ${new Date(t.deadline).toISOString()}`
  ]
}

function defined<T extends Record<string, unknown>> (o: T): Record<string, any> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined))
}
