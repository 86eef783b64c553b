import type { MoltNode } from '../node.js'
import type { Route as ConnectionRoute } from '../services/speak/index.js'
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import { optionalBoolean, optionalInteger, parseMessageInit, parsePeer, queryInteger, requireObject } from './validate.js'
import type {
  HealthResponse, IdentityResponse, InboxResponse, PeerInfo, PeersResponse, PingResponse, RequestResponse, SendResponse
} from './types.js'

export interface RouteContext {
  url: URL
  /** Parsed JSON body of a POST */
  body: unknown
  /** Aborted when the client goes away */
  signal: AbortSignal
}

export interface Route {
  handler: (context: RouteContext) => Promise<unknown>
  /** Served without the bearer token */
  public?: boolean
}

export type Method = 'GET' | 'POST'

/** Longest wait a client may ask of /v1/requests and /v1/ping */
const MAX_TIMEOUT_MS = 10 * 60 * 1000
const MAX_INBOX_PAGE = 1000
const DEFAULT_INBOX_PAGE = 100

/** The node's identity and addresses, as GET /v1/identity answers */
export function describeIdentity (node: MoltNode): IdentityResponse {
  const { name, org, description, capabilities } = node.profile
  return {
    peerId: node.peerId.toString(),
    did: node.did,
    key: node.moltKey,
    agent: { name, org, description, capabilities },
    addresses: node.getMultiaddrs().map(String)
  }
}

/** path → method → route */
export function createRoutes (node: MoltNode, startedAt: number): Map<string, Partial<Record<Method, Route>>> {
  const health = async (): Promise<HealthResponse> => ({
    status: 'ok', peerId: node.peerId.toString(), uptimeMs: Math.round(performance.now() - startedAt)
  })

  const identity = async (): Promise<IdentityResponse> => describeIdentity(node)

  const send = async ({ body, signal }: RouteContext): Promise<SendResponse> => {
    const fields = requireObject(body, ['to', 'message', 'sign'])
    const to = parsePeer(fields.to)
    const message = parseMessageInit(fields.message)
    const sign = optionalBoolean(fields.sign, 'sign')
    return node.send(to, message, { signal, sign })
  }

  const request = async ({ body, signal }: RouteContext): Promise<RequestResponse> => {
    const fields = requireObject(body, ['to', 'message', 'sign', 'timeoutMs'])
    const to = parsePeer(fields.to)
    const message = parseMessageInit(fields.message)
    const sign = optionalBoolean(fields.sign, 'sign')
    const timeout = optionalInteger(fields.timeoutMs, 'timeoutMs', 1, MAX_TIMEOUT_MS) ?? DEFAULT_REQUEST_TIMEOUT
    return { reply: await node.request(to, message, { signal, sign, timeout }) }
  }

  const inbox = async ({ url }: RouteContext): Promise<InboxResponse> => {
    const after = queryInteger(url.searchParams, 'after', 0, 0, Number.MAX_SAFE_INTEGER)
    const limit = queryInteger(url.searchParams, 'limit', DEFAULT_INBOX_PAGE, 1, MAX_INBOX_PAGE)
    const messages = await node.inbox({ after, limit })
    return { messages, next: messages.at(-1)?.cursor ?? after }
  }

  const ping = async ({ body, signal }: RouteContext): Promise<PingResponse> => {
    const fields = requireObject(body, ['to', 'timeoutMs'])
    const to = parsePeer(fields.to)
    const timeout = optionalInteger(fields.timeoutMs, 'timeoutMs', 1, MAX_TIMEOUT_MS)
    const { rtt, pong } = await node.ping(to, { signal, timeout })
    return { rttMs: rtt, pong }
  }

  const peers = async (): Promise<PeersResponse> => {
    const byPeer = new Map<string, PeerInfo>()
    for (const connection of node.libp2p.getConnections()) {
      const peerId = connection.remotePeer.toString()
      const route: ConnectionRoute = connection.limits != null ? 'relayed' : 'direct'
      const info = byPeer.get(peerId)
      if (info == null) {
        byPeer.set(peerId, { peerId, addresses: [connection.remoteAddr.toString()], route })
        continue
      }
      info.addresses.push(connection.remoteAddr.toString())
      // any unlimited connection makes the peer directly reachable
      if (route === 'direct') info.route = 'direct'
    }
    return { peers: [...byPeer.values()] }
  }

  return new Map<string, Partial<Record<Method, Route>>>([
    ['/v1/health', { GET: { handler: health, public: true } }],
    ['/v1/identity', { GET: { handler: identity } }],
    ['/v1/messages', { GET: { handler: inbox }, POST: { handler: send } }],
    ['/v1/requests', { POST: { handler: request } }],
    ['/v1/ping', { POST: { handler: ping } }],
    ['/v1/peers', { GET: { handler: peers } }]
  ])
}
