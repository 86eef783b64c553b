import type { MoltNode } from '../node.js'
import { connectionRoute } from '../routing/route.js'
import type { Route as ConnectionRoute } from '../services/speak/index.js'
import { DEFAULT_REQUEST_TIMEOUT } from '../constants.js'
import {
  invalid, missing, optionalBoolean, requireInteger, optionalInteger, parseMessageInit, parsePeer, queryBoolean, queryInteger, queryString, requireObject
} from './validate.js'
import { HttpError } from './errors.js'
import { serveStream, type StreamContext } from './stream.js'
import { sendJson, sendJsonText } from './http.js'
import { entryJson } from '../inbox/index.js'
import type {
  AckResponse, CardResponse, DiscoverResponse, HealthResponse, IdentityResponse, InboxResponse, PeerInfo, PeersResponse, PingResponse,
  OutboxResponse, ReceiptResponse, RequestResponse, SendResponse
} from './types.js'
import { DELIVERY_MODES, type DeliveryMode } from '../delivery/constants.js'
import { trustRoutes } from './trust-routes.js'
import { keyRoutes } from './key-routes.js'
import { taskRoutes } from './task-routes.js'
import type { Method, Route, RouteContext } from './route.js'
import { topicRoutes } from './topic-routes.js'
import { PRIORITIES, type Priority } from '../services/speak/index.js'

export type { Method, Route, RouteContext } from './route.js'

export interface RoutesOptions {
  /** Interval of the `: keepalive` comment on /v1/stream. @default 15 s */
  keepaliveMs?: number
}

/** Longest wait a client may ask of /v1/requests and /v1/ping */
const MAX_TIMEOUT_MS = 10 * 60 * 1000
const MAX_INBOX_PAGE = 1000
const DEFAULT_INBOX_PAGE = 100
const MAX_DISCOVER_LIMIT = 100
const DEFAULT_DISCOVER_LIMIT = 20
/** A capability name's longest form (an agent card's limit) */
const MAX_CAPABILITY_LENGTH = 128
/** Longest PeerId or multiaddr text accepted in a query */
const MAX_PEER_LENGTH = 1024

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

/**
 * Every agent the node knows, with presence (status, last seen, card data,
 * heartbeat figures), as GET /v1/peers answers. A connected peer presence has
 * no addresses for yet (an inbound connection before its card came) lists the
 * addresses of its open connections.
 */
export function describePeers (node: MoltNode): PeerInfo[] {
  const connected = new Map<string, { addresses: string[], route: ConnectionRoute }>()
  for (const connection of node.libp2p.getConnections()) {
    const peerId = connection.remotePeer.toString()
    const route: ConnectionRoute = connectionRoute(connection)
    const entry = connected.get(peerId)
    if (entry == null) {
      connected.set(peerId, { addresses: [connection.remoteAddr.toString()], route })
      continue
    }
    entry.addresses.push(connection.remoteAddr.toString())
    // any unlimited connection makes the peer directly reachable
    if (route === 'direct') entry.route = 'direct'
  }
  const peers: PeerInfo[] = node.peers().map((peer) => {
    const connection = connected.get(peer.peerId)
    if (connection == null) return peer
    connected.delete(peer.peerId)
    return {
      ...peer,
      status: 'connected',
      route: connection.route,
      addresses: peer.addresses.length > 0 ? peer.addresses : connection.addresses
    }
  })
  // connections presence has not recorded (it is bounded, or the connection is brand new)
  const now = Date.now()
  for (const [peerId, { addresses, route }] of connected) {
    peers.unshift({ peerId, status: 'connected', lastSeen: now, route, addresses, capabilities: [] })
  }
  return peers
}

/** path → method → route */
export function createRoutes (node: MoltNode, startedAt: number, options: RoutesOptions = {}): Map<string, Partial<Record<Method, Route>>> {
  /** Highest cursor a client acknowledged through POST /v1/messages/ack (this server's memory only) */
  let acked = 0

  const health = async (): Promise<HealthResponse> => ({
    status: 'ok', peerId: node.peerId.toString(), uptimeMs: Math.round(performance.now() - startedAt), acked
  })

  const ack = async ({ body }: RouteContext): Promise<AckResponse> => {
    const fields = requireObject(body, ['cursor'])
    const cursor = requireInteger(fields.cursor, 'cursor', 0, Number.MAX_SAFE_INTEGER)
    acked = Math.max(acked, cursor)
    return { acked }
  }

  const stream = async (context: StreamContext): Promise<void> => serveStream(node, context, options.keepaliveMs)

  const identity = async (): Promise<IdentityResponse> => describeIdentity(node)

  const send = async ({ body, signal }: RouteContext): Promise<SendResponse> => {
    const fields = requireObject(body, ['to', 'message', 'sign', 'delivery', 'receipt', 'priority'])
    const to = parsePeer(fields.to)
    const message = parseMessageInit(fields.message)
    const sign = optionalBoolean(fields.sign, 'sign')
    const receipt = optionalBoolean(fields.receipt, 'receipt')
    if (fields.delivery !== undefined && !(DELIVERY_MODES as readonly unknown[]).includes(fields.delivery)) {
      throw invalid('delivery', `must be one of ${DELIVERY_MODES.join(', ')}`)
    }
    if (fields.priority !== undefined && !(PRIORITIES as readonly unknown[]).includes(fields.priority)) throw invalid('priority', `must be one of ${PRIORITIES.join(', ')}`)
    return node.send(to, message, { signal, sign, receipt, delivery: fields.delivery as DeliveryMode | undefined, priority: fields.priority as Priority | undefined })
  }

  const outbox = async ({ url }: RouteContext): Promise<OutboxResponse> => {
    const peer = queryString(url.searchParams, 'peer', MAX_PEER_LENGTH)
    const pending = node.outbox({ peer }).map(({ json, ...entry }) => ({ ...entry, bytes: Buffer.byteLength(json) }))
    const dead = node.deadLetters().map(({ json, ...letter }) => ({ ...letter, bytes: Buffer.byteLength(json) }))
    return { pending, dead }
  }

  const receipt = async ({ url, signal }: RouteContext): Promise<ReceiptResponse> => {
    const id = queryString(url.searchParams, 'id', MAX_PEER_LENGTH)
    if (id === undefined) throw missing('id')
    const timeout = queryTimeout(url.searchParams)
    return { receipt: await node.receipt(id, { signal, timeout }) }
  }

  const request = async ({ body, signal }: RouteContext): Promise<RequestResponse> => {
    const fields = requireObject(body, ['to', 'message', 'sign', 'timeoutMs'])
    const to = parsePeer(fields.to)
    const message = parseMessageInit(fields.message)
    const sign = optionalBoolean(fields.sign, 'sign')
    const timeout = optionalInteger(fields.timeoutMs, 'timeoutMs', 1, MAX_TIMEOUT_MS) ?? DEFAULT_REQUEST_TIMEOUT
    return { reply: await node.request(to, message, { signal, sign, timeout }) }
  }

  /** Answers an InboxResponse, serializing each entry on its own: one that cannot be is a placeholder, not a 500 for the page */
  const inbox = async ({ url, res }: StreamContext): Promise<void> => {
    const after = queryInteger(url.searchParams, 'after', 0, 0, Number.MAX_SAFE_INTEGER)
    const limit = queryInteger(url.searchParams, 'limit', DEFAULT_INBOX_PAGE, 1, MAX_INBOX_PAGE)
    const messages = await node.inbox({ after, limit })
    const next: InboxResponse['next'] = messages.at(-1)?.cursor ?? after
    sendJsonText(res, 200, `{"messages":[${messages.map(entryJson).join(',')}],"next":${next}}`)
  }

  const ping = async ({ body, signal }: RouteContext): Promise<PingResponse> => {
    const fields = requireObject(body, ['to', 'timeoutMs'])
    const to = parsePeer(fields.to)
    const timeout = optionalInteger(fields.timeoutMs, 'timeoutMs', 1, MAX_TIMEOUT_MS)
    const { rtt, pong } = await node.ping(to, { signal, timeout })
    return { rttMs: rtt, pong }
  }

  const peers = async (): Promise<PeersResponse> => ({ peers: describePeers(node) })

  const discover = async ({ url, signal }: RouteContext): Promise<DiscoverResponse> => {
    const params = url.searchParams
    const capability = queryString(params, 'capability', MAX_CAPABILITY_LENGTH)
    if (capability === undefined) throw missing('capability')
    const limit = queryInteger(params, 'limit', DEFAULT_DISCOVER_LIMIT, 1, MAX_DISCOVER_LIMIT)
    const timeout = queryTimeout(params)
    const agents = await bounded(signal, timeout, `discovering ${capability}`, async (signal) => node.discover(capability, { limit, signal }))
    return { agents }
  }

  const card = async ({ url, signal }: RouteContext): Promise<CardResponse> => {
    const params = url.searchParams
    const peer = queryString(params, 'peer', MAX_PEER_LENGTH)
    const force = queryBoolean(params, 'force', false)
    const timeout = queryTimeout(params)
    if (peer === undefined) return { card: node.ownCard() }
    const to = parsePeer(peer, 'peer')
    return { card: await bounded(signal, timeout, `fetching the card of ${peer}`, async (signal) => node.card(to, { signal, force })) }
  }

  const liveness = async (): Promise<{ status: 'ok' }> => ({ status: 'ok' })

  const readiness = async ({ res }: StreamContext): Promise<void> => {
    const report = await checkReadiness(node)
    sendJson(res, report.status === 'ready' ? 200 : 503, report)
  }

  const metrics = async ({ res }: StreamContext): Promise<void> => {
    const text = await node.metrics.text()
    if (res.headersSent || res.destroyed) return
    res.writeHead(200, { 'content-type': node.metrics.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
    res.end(text)
  }

  return new Map<string, Partial<Record<Method, Route>>>([
    ['/metrics', { GET: { stream: metrics } }],
    ['/health', { GET: { handler: liveness, public: true } }],
    ['/health/ready', { GET: { stream: readiness, public: true } }],
    ['/v1/health', { GET: { handler: health, public: true } }],
    ['/v1/identity', { GET: { handler: identity } }],
    ['/v1/messages', { GET: { stream: inbox }, POST: { handler: send } }],
    ['/v1/messages/ack', { POST: { handler: ack } }],
    ['/v1/outbox', { GET: { handler: outbox } }],
    ['/v1/receipts', { GET: { handler: receipt } }],
    ['/v1/stream', { GET: { stream } }],
    ['/v1/requests', { POST: { handler: request } }],
    ['/v1/ping', { POST: { handler: ping } }],
    ['/v1/peers', { GET: { handler: peers } }],
    ['/v1/discover', { GET: { handler: discover } }],
    ['/v1/card', { GET: { handler: card } }],
    ...trustRoutes(node),
    ...keyRoutes(node),
    ...taskRoutes(node),
    ...topicRoutes(node)
  ])
}

/** GET /health/ready: 200 `ready` or 503 `not-ready`, with every check */
export interface ReadinessReport {
  status: 'ready' | 'not-ready'
  checks: {
    /** libp2p is started */
    started: boolean
    /** Addresses the node listens on (at least one needed) */
    listening: number
    /** The LevelDB store answers a read */
    storage: boolean
    /** Configured relays and how many of them (or discovered ones) hold a reservation; not ready when some are configured and none is reserved */
    relays: { configured: number, reserved: number }
  }
}

export async function checkReadiness (node: MoltNode): Promise<ReadinessReport> {
  const started = node.libp2p.status === 'started'
  let listening = 0
  let relays = { configured: 0, reserved: 0 }
  if (started) {
    listening = node.libp2p.getMultiaddrs().length
    try {
      const status = node.relays()
      relays = { configured: status.filter(r => r.source === 'config').length, reserved: status.filter(r => r.reserved).length }
    } catch {}
  }
  let storage = false
  try {
    // a one-entry read past the newest message: cheap, and fails once the store is closed
    await node.inbox({ after: node.inboxCursor(), limit: 1 })
    storage = true
  } catch {}
  const ready = started && listening > 0 && storage && (relays.configured === 0 || relays.reserved > 0)
  return { status: ready ? 'ready' : 'not-ready', checks: { started, listening, storage, relays } }
}

/** `timeoutMs` query parameter, 1 ms to MAX_TIMEOUT_MS */
function queryTimeout (params: URLSearchParams): number | undefined {
  return params.has('timeoutMs') ? queryInteger(params, 'timeoutMs', 0, 1, MAX_TIMEOUT_MS) : undefined
}

/** Run `task` with the client's signal, aborted after `timeout` ms too: that deadline answers 504 E_TIMEOUT */
async function bounded<T> (signal: AbortSignal, timeout: number | undefined, what: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (timeout == null) return task(signal)
  const deadline = AbortSignal.timeout(timeout)
  try {
    return await task(AbortSignal.any([signal, deadline]))
  } catch (err) {
    if (deadline.aborted && !signal.aborted) throw new HttpError(504, 'E_TIMEOUT', `${what} took longer than ${timeout} ms`)
    throw err
  }
}
