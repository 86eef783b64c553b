import type { MoltNode } from '../node.js'
import { HttpError } from './errors.js'
import { invalid, missing, parseMessageInit, requireObject } from './validate.js'
import type { Method, Route, RouteContext } from './route.js'
import { TOPIC_NAME_PATTERN } from '../services/topics/index.js'

const ACTIONS = ['join', 'leave', 'publish'] as const

/**
 * GET /v1/topics (joined topics and counters), POST /v1/topics/{name}
 * `{action: join|leave}` or `{action: publish, message}`: protocols/topics.md, "Local API"
 */
export function topicRoutes (node: MoltNode): Array<[string, Partial<Record<Method, Route>>]> {
  const list = async (): Promise<unknown> => ({ topics: node.topics.list(), stats: node.topics.stats() })

  const act = async ({ url, body }: RouteContext): Promise<unknown> => {
    const name = topicName(url)
    const fields = requireObject(body, ['action', 'message'])
    const action = fields.action
    if (action === undefined) throw missing('action')
    if (!(ACTIONS as readonly unknown[]).includes(action)) throw invalid('action', `must be one of ${ACTIONS.join(', ')}`)
    if (action !== 'publish' && fields.message !== undefined) throw invalid('message', `is only for publish, not ${String(action)}`)
    try {
      if (action === 'join') return await node.topics.join(name)
      if (action === 'leave') {
        await node.topics.leave(name)
        return { name, left: true }
      }
      const message = parseMessageInit(fields.message)
      if (message.to !== undefined) throw invalid('message.to', 'is the topic itself on a topic message')
      const { message: sent, ...result } = await node.topics.publish(name, message as any)
      return { ...result, message: sent }
    } catch (err: any) {
      switch (err?.name) {
        case 'InvalidTopicError': throw new HttpError(400, 'E_INVALID_PARAM', err.message, 'name')
        case 'TooManyTopicsError': throw new HttpError(429, 'E_RATE_LIMIT', err.message)
        case 'TopicMessageError': throw new HttpError(422, 'E_SCHEMA', err.message, 'message')
        default: throw err
      }
    }
  }

  return [
    ['/v1/topics', { GET: { handler: list } }],
    ['/v1/topics/*', { POST: { handler: act } }]
  ]
}

function topicName (url: URL): string {
  let name: string
  try {
    name = decodeURIComponent(url.pathname.slice('/v1/topics/'.length))
  } catch {
    throw invalid('name', 'is not valid percent-encoding')
  }
  if (!TOPIC_NAME_PATTERN.test(name)) throw invalid('name', `must match ${String(TOPIC_NAME_PATTERN)}`)
  return name
}
