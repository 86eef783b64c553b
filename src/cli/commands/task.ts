import { withLocalApi, type LocalApi } from './task-api.js'
import type { TaskInit, TaskRecord } from '../../services/tasks/index.js'
import { integerFlag, stringFlag, booleanFlag } from '../args.js'
import { UsageError } from '../errors.js'
import type { Command, CommandContext } from '../command.js'
import { subcommandCommand } from '../subcommands.js'

/** Exit code of a claim the offerer refused (another agent won it, or it was not offered to us) */
const EXIT_REFUSED = 3

/** `list`/`show`/`offer`/an action on the running agent's task routes, else a short-lived node's */
async function withTasks<T> ({ dataDir, signal }: CommandContext, use: (api: LocalApi) => Promise<T>): Promise<T> {
  return withLocalApi(dataDir, signal, '/v1/tasks', use)
}

/** POST an action (`claim`, `progress`, …) for task `id` and print the record it leaves */
async function act (context: CommandContext, id: string, body: Record<string, unknown>): Promise<void> {
  const record = await withTasks(context, async (api) => api.call<TaskRecord>('POST', `/${encodeURIComponent(id)}`, body))
  context.out.result(formatDetail(record), record)
}

export const taskCommand: Command = subcommandCommand({
  name: 'task',
  notes: [
    'States: created, offered, claimed, running, completed, failed, cancelled, expired, refused',
    '(protocols/tasks.md). Every transition is a signed MoltSpeak message sent at-least-once.',
    'Uses the running agent (molt agent) through its local API, else a short-lived node: an',
    'offerer must be running to arbitrate claims, so offer from a running agent.',
    `Exit codes: 0 ok, 1 failure, 2 bad command line, ${EXIT_REFUSED} claim refused (E_TASK_CLAIMED: another agent won).`,
    'With --json each result is one JSON object (a task record, or {"tasks":[…]}).'
  ],
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
}, [
  {
    name: 'offer',
    usage: '<peer>…|--topic <name> [--type t] [--description d] [--params JSON] [--priority p] [--ttl <s>] [--id id]',
    summary: 'offer one task to one or more agents; the first valid claim wins it',
    positionals: [0, Infinity],
    options: ['id', 'topic', 'type', 'description', 'params', 'priority', 'ttl'],
    async run (context, peers) {
      const topic = stringFlag(context.args.values, 'topic')
      if (topic !== undefined && peers.length > 0) throw new UsageError('molt task offer takes <peer>… or --topic <name>, not both')
      if (topic === undefined && peers.length === 0) throw new UsageError('molt task offer needs at least one <peer>, or --topic <name>')
      const task = offerInit(context.args.values)
      const record = await withTasks(context, async (api) => api.call<TaskRecord>('POST', '', topic !== undefined ? { topic, task } : { to: peers, task }))
      context.out.result(formatDetail(record), record)
    }
  },
  {
    name: 'list',
    usage: '[--role offerer|worker] [--state s] [--limit n]',
    summary: 'tasks this agent knows, newest first',
    options: ['role', 'state', 'limit'],
    async run (context) {
      const v = context.args.values
      const query = defined({ role: stringFlag(v, 'role'), state: stringFlag(v, 'state'), limit: integerFlag(stringFlag(v, 'limit'), 'limit', 1, 1000) })
      const { tasks } = await withTasks(context, async (api) => api.call<{ tasks: TaskRecord[] }>('GET', `?${new URLSearchParams(query).toString()}`))
      context.out.result(tasks.length === 0 ? 'no tasks' : tasks.map(formatTask), { tasks })
    }
  },
  {
    name: 'show',
    usage: '<id>',
    summary: 'one task: state, offerer, worker, grant, result, messages',
    positionals: 1,
    async run (context, [id]) {
      const record = await withTasks(context, async (api) => api.call<TaskRecord>('GET', `/${encodeURIComponent(id)}`))
      context.out.result(formatDetail(record), record)
    }
  },
  {
    name: 'claim',
    usage: '<id> [--no-wait] [--timeout <ms>]',
    summary: 'claim a task offered to this agent',
    positionals: 1,
    options: ['no-wait', 'timeout'],
    async run (context, [id]) {
      const v = context.args.values
      const body = defined({ action: 'claim', wait: booleanFlag(v, 'no-wait') ? false : undefined, timeoutMs: integerFlag(stringFlag(v, 'timeout'), 'timeout', 1, 600_000) })
      try {
        await act(context, id, body)
      } catch (err: any) {
        if (err.status === 409 && typeof err.code === 'string' && err.code.startsWith('E_TASK_')) {
          context.out.error(err.code, err.message)
          return EXIT_REFUSED
        }
        throw err
      }
    }
  },
  {
    name: 'progress',
    usage: '<id> [--progress 0..1] [--note text]',
    summary: 'report how far the work is',
    positionals: 1,
    options: ['progress', 'note'],
    async run (context, [id]) {
      const v = context.args.values
      const text = stringFlag(v, 'progress')
      const progress = text !== undefined ? Number(text) : undefined
      if (progress !== undefined && !(progress >= 0 && progress <= 1)) throw new UsageError('--progress must be a number from 0 to 1')
      await act(context, id, defined({ action: 'progress', progress, note: stringFlag(v, 'note') }))
    }
  },
  {
    name: 'complete',
    usage: '<id> [--result JSON]',
    summary: 'send the result to the offerer',
    positionals: 1,
    options: ['result'],
    async run (context, [id]) {
      const result = stringFlag(context.args.values, 'result')
      await act(context, id, defined({ action: 'complete', result: result !== undefined ? parseLoose(result) : undefined }))
    }
  },
  {
    name: 'fail',
    usage: '<id> --reason text',
    summary: 'give the task up, telling the offerer why',
    positionals: 1,
    options: ['reason'],
    async run (context, [id]) {
      const reason = stringFlag(context.args.values, 'reason')
      if (reason === undefined) throw new UsageError('molt task fail needs --reason')
      await act(context, id, { action: 'fail', reason })
    }
  },
  {
    name: 'cancel',
    usage: '<id> [--reason text]',
    summary: 'withdraw an offer (offerer only)',
    positionals: 1,
    options: ['reason'],
    async run (context, [id]) {
      await act(context, id, defined({ action: 'cancel', reason: stringFlag(context.args.values, 'reason') }))
    }
  }
])

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
