import { OPS, type Op } from '../../moltspeak/index.js'
import type { TopicInfo, TopicStats } from '../../services/topics/index.js'
import { stringFlag } from '../args.js'
import { UsageError } from '../errors.js'
import type { Command } from '../command.js'
import { openLocalApi } from './task-api.js'

const SUBCOMMANDS = ['join', 'leave', 'publish', 'list'] as const

export const topicCommand: Command = {
  spec: {
    name: 'topic',
    args: '<join|leave|publish|list> [name]',
    details: [
      'molt topic join <name>           subscribe to molt/topic/<name>; its messages reach the inbox (molt inbox)',
      '                                 with "topic": "<name>". Kept across restarts of the agent.',
      'molt topic leave <name>          unsubscribe: nothing more of it reaches the inbox',
      'molt topic publish <name> --op <op> [--payload JSON]',
      '                                 sign a message addressed to the topic and publish it',
      'molt topic list                  joined topics and the peers known to be in each',
      '',
      'Names: letters, digits, ".", "_", "-", up to 64 characters (a team or a capability).',
      'Every member checks each message (size, nesting, schema, signature by the publisher) and',
      'refuses bad ones, lowering the sender\'s gossip score; each publisher is rate-limited',
      '(protocols/topics.md). To offer a task to a topic: molt task offer --topic <name> ….',
      'Uses the running agent (molt agent) through its local API; without one, join/leave are',
      'recorded in the data dir for the next agent, and a publish reaches no one.',
      'Exit codes: 0 ok, 1 failure, 2 bad command line. --json prints one JSON object.'
    ].join('\n'),
    options: {
      op: { type: 'string', arg: '<op>', description: `publish: the operation (${OPS.join(', ')})` },
      payload: { type: 'string', arg: '<json>', description: 'publish: the payload `p`, a JSON object (default {})' }
    }
  },

  async run ({ args, dataDir, out, signal }) {
    const [sub, ...rest] = args.positionals
    if (sub === undefined) throw new UsageError('molt topic needs a subcommand (see molt topic --help)')
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown subcommand "${sub}" (see molt topic --help)`)
    if (sub === 'list' ? rest.length !== 0 : rest.length !== 1) throw new UsageError(sub === 'list' ? 'molt topic list takes no argument' : `molt topic ${sub} needs exactly one <name>`)
    const v = args.values
    const op = stringFlag(v, 'op')
    const payload = stringFlag(v, 'payload')
    if (sub !== 'publish' && (op !== undefined || payload !== undefined)) throw new UsageError('--op and --payload are for molt topic publish')
    let message: { op: Op, p: Record<string, unknown> } | undefined
    if (sub === 'publish') {
      if (op === undefined) throw new UsageError('molt topic publish needs --op <op>')
      if (!(OPS as readonly string[]).includes(op)) throw new UsageError(`--op must be one of ${OPS.join(', ')}, got "${op}"`)
      message = { op: op as Op, p: parseObject(payload) }
    }
    const api = await openLocalApi(dataDir, signal, '/v1/topics')
    try {
      if (sub === 'list') {
        const { topics, stats } = await api.call<{ topics: TopicInfo[], stats: TopicStats }>('GET', '')
        out.result(topics.length === 0 ? 'no topics joined' : topics.map(t => `${t.name} (${t.topic}) ${t.peers.length} peers`), { topics, stats })
        return
      }
      const name = rest[0]
      const path = `/${encodeURIComponent(name)}`
      if (sub === 'publish') {
        const sent = await api.call<{ id: string, recipients: number }>('POST', path, { action: 'publish', message })
        out.result(`published ${sent.id} to ${name} (${sent.recipients} peers)`, sent)
        return
      }
      const result = await api.call('POST', path, { action: sub })
      out.result(sub === 'join' ? `joined ${name} (${(result as TopicInfo).peers.length} peers known)` : `left ${name}`, result)
    } finally {
      await api.close()
    }
  }
}

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
