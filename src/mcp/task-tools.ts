import * as z from 'zod'
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import type { ApiClient } from '../api/index.js'
import { TASK_PRIORITIES } from '../moltspeak/index.js'
import { MAX_OFFER_PEERS, TASK_STATES, type TaskRecord } from '../services/tasks/index.js'
import * as c from './constants.js'

/*
 * The task tools (protocols/tasks.md) over the agent's local API /v1/tasks:
 * offer, claim ("first agent wins"), complete, list. A refused claim is a
 * tool error naming the refusal's code (E_TASK_CLAIMED: another agent won).
 */

const peer = z.string().min(1).max(c.MAX_PEER_LENGTH)
const taskId = z.string().min(1).max(128).describe('the task id')
/** A task record as the API answers it: the main fields named, the rest passes through */
const task = z.looseObject({
  id: z.string(), role: z.string(), state: z.string(), offerer: z.string(), worker: z.string().optional(), topic: z.string().optional(),
  type: z.string().optional(), description: z.string().optional(), deadline: z.number(), result: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional()
})

export function registerTaskTools (server: McpServer, client: ApiClient, run: (fn: () => Promise<Record<string, unknown>>) => Promise<CallToolResult>): void {
  server.registerTool('offer_task', {
    title: 'Offer a task',
    description: [
      'Offer work to one or more agents (to), or to every member of a team topic (topic). The first agent whose claim reaches',
      'this agent wins it; every other claimant is refused at once. Watch it with list_tasks (state claimed → running → completed, with result).'
    ].join(' '),
    inputSchema: {
      to: z.array(peer).min(1).max(MAX_OFFER_PEERS).optional().describe('PeerIds (or multiaddrs) of the agents to offer it to'),
      topic: z.string().min(1).max(64).optional().describe('a team topic name, instead of `to`'),
      id: taskId.optional().describe('default: a random UUID'),
      type: z.string().min(1).max(128).optional().describe('the kind of work, e.g. translate.text'),
      description: z.string().max(4096).optional(),
      params: z.record(z.string(), z.unknown()).optional(),
      priority: z.enum(TASK_PRIORITIES as unknown as [string, ...string[]]).optional(),
      deadline: z.number().int().optional().describe('Unix ms by which it must be done (default 7 days)')
    },
    outputSchema: { task }
  }, async (args, { signal }) => run(async () => {
    const { to, topic, ...fields } = args
    const body = topic !== undefined ? { topic, task: fields } : { to, task: fields }
    return { task: await client.tasks<TaskRecord>('POST', '', body, { signal }) as unknown as Record<string, unknown> }
  }))

  server.registerTool('claim_task', {
    title: 'Claim a task',
    description: [
      'Claim a task offered to this agent (list_tasks role worker, state offered) and wait for the offerer\'s decision.',
      'Granted: state claimed, do the work, then complete_task. Lost: an error E_TASK_CLAIMED (another agent won it).'
    ].join(' '),
    inputSchema: { id: taskId, timeoutMs: z.number().int().min(1).max(c.MAX_TOOL_TIMEOUT_MS).optional().describe('default 30000') },
    outputSchema: { task }
  }, async (args, { signal }) => run(async () => ({
    task: await client.tasks<TaskRecord>('POST', `/${encodeURIComponent(args.id)}`, { action: 'claim', ...(args.timeoutMs !== undefined ? { timeoutMs: args.timeoutMs } : {}) }, { signal }) as unknown as Record<string, unknown>
  })))

  server.registerTool('complete_task', {
    title: 'Complete a task',
    description: 'Report a task granted to this agent as done, with its result (any JSON), or as failed with a reason.',
    inputSchema: {
      id: taskId,
      result: z.unknown().optional().describe('the result sent to the offerer'),
      failed: z.string().max(4096).optional().describe('instead of a result: why the task failed')
    },
    outputSchema: { task }
  }, async (args, { signal }) => run(async () => {
    const body = args.failed !== undefined ? { action: 'fail', reason: args.failed } : { action: 'complete', ...(args.result !== undefined ? { result: args.result } : {}) }
    return { task: await client.tasks<TaskRecord>('POST', `/${encodeURIComponent(args.id)}`, body, { signal }) as unknown as Record<string, unknown> }
  }))

  server.registerTool('list_tasks', {
    title: 'List tasks',
    description: 'Tasks this agent offered (role offerer) or was offered (role worker), newest first, with state, worker and result.',
    inputSchema: {
      role: z.enum(['offerer', 'worker']).optional(),
      state: z.enum(TASK_STATES as unknown as [string, ...string[]]).optional(),
      limit: z.number().int().min(1).max(1000).optional().describe('default 100')
    },
    outputSchema: { tasks: z.array(task) },
    annotations: { readOnlyHint: true }
  }, async (args, { signal }) => run(async () => {
    const query = new URLSearchParams(Object.entries(args).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)]))
    const { tasks } = await client.tasks<{ tasks: TaskRecord[] }>('GET', query.size > 0 ? `?${query}` : '', undefined, { signal })
    return { tasks: tasks as unknown as Array<Record<string, unknown>> }
  }))
}
