import { OPS, type Op } from '../../moltspeak/index.js'
import type { TopicInfo, TopicStats } from '../../services/topics/index.js'
import { stringFlag } from '../args.js'
import { UsageError } from '../errors.js'
import type { Command, CommandContext } from '../command.js'
import { subcommandCommand } from '../subcommands.js'
import { withLocalApi, type LocalApi } from './task-api.js'

/** The running agent's topic routes (else a short-lived node's) for the length of `use` */
async function withTopics<T> ({ dataDir, signal }: CommandContext, use: (api: LocalApi) => Promise<T>): Promise<T> {
  return withLocalApi(dataDir, signal, '/v1/topics', use)
}

const topicPath = (name: string): string => `/${encodeURIComponent(name)}`

export const topicCommand: Command = subcommandCommand({
  name: 'topic',
  notes: [
    'Names: letters, digits, ".", "_", "-", up to 64 characters (a team or a capability).',
    'Every member checks each message (size, nesting, schema, signature by the publisher) and',
    'refuses bad ones, lowering the sender\'s gossip score; each publisher is rate-limited',
    '(protocols/topics.md). To offer a task to a topic: molt task offer --topic <name> ….',
    'Uses the running agent (molt agent) through its local API; without one, join/leave are',
    'recorded in the data dir for the next agent, and a publish reaches no one.',
    'Exit codes: 0 ok, 1 failure, 2 bad command line. --json prints one JSON object.'
  ],
  options: {
    op: { type: 'string', arg: '<op>', description: `publish: the operation (${OPS.join(', ')})` },
    payload: { type: 'string', arg: '<json>', description: 'publish: the payload `p`, a JSON object (default {})' }
  }
}, [
  {
    name: 'join',
    usage: '<name>',
    summary: ['subscribe to molt/topic/<name>; its messages reach the inbox (molt inbox)', 'with "topic": "<name>". Kept across restarts of the agent.'],
    positionals: 1,
    async run (context, [name]) {
      const joined = await withTopics(context, async (api) => api.call<TopicInfo>('POST', topicPath(name), { action: 'join' }))
      context.out.result(`joined ${name} (${joined.peers.length} peers known)`, joined)
    }
  },
  {
    name: 'leave',
    usage: '<name>',
    summary: 'unsubscribe: nothing more of it reaches the inbox',
    positionals: 1,
    async run (context, [name]) {
      const left = await withTopics(context, async (api) => api.call('POST', topicPath(name), { action: 'leave' }))
      context.out.result(`left ${name}`, left)
    }
  },
  {
    name: 'publish',
    usage: '<name> --op <op> [--payload JSON]',
    summary: 'sign a message addressed to the topic and publish it',
    positionals: 1,
    options: ['op', 'payload'],
    async run (context, [name]) {
      const op = stringFlag(context.args.values, 'op')
      if (op === undefined) throw new UsageError('molt topic publish needs --op <op>')
      if (!(OPS as readonly string[]).includes(op)) throw new UsageError(`--op must be one of ${OPS.join(', ')}, got "${op}"`)
      const message = { op: op as Op, p: parseObject(stringFlag(context.args.values, 'payload')) }
      const sent = await withTopics(context, async (api) => api.call<{ id: string, recipients: number }>('POST', topicPath(name), { action: 'publish', message }))
      context.out.result(`published ${sent.id} to ${name} (${sent.recipients} peers)`, sent)
    }
  },
  {
    name: 'list',
    summary: 'joined topics and the peers known to be in each',
    async run (context) {
      const { topics, stats } = await withTopics(context, async (api) => api.call<{ topics: TopicInfo[], stats: TopicStats }>('GET', ''))
      context.out.result(topics.length === 0 ? 'no topics joined' : topics.map(t => `${t.name} (${t.topic}) ${t.peers.length} peers`), { topics, stats })
    }
  }
])

function parseObject (text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {}
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new UsageError('--payload must be JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--payload must be a JSON object')
  return value as Record<string, unknown>
}
