import type { DeliveryMode } from '../delivery/constants.js'
import type { OutboxResponse } from './types.js'
import { ApiError } from './errors.js'
import type { ErrorCode } from '../moltspeak/index.js'
import type {
  AckResponse, ApiMessageInit, CardQuery, CardResponse, DiscoverQuery, DiscoverResponse, ErrorResponse, HealthResponse, IdentityResponse,
  InboxResponse, PeersResponse, PingResponse, ReceiptResponse, RequestResponse, SendResponse
} from './types.js'

export interface ApiClientOptions {
  /** e.g. `http://127.0.0.1:4180` */
  url: string
  token: string
}

export interface CallOptions {
  signal?: AbortSignal
}

/** Extra wait on top of a node-side timeout, so the node's E_TIMEOUT reaches us before fetch gives up */
const TIMEOUT_MARGIN_MS = 5000

/** A typed client of the local API; every method throws ApiError on a non-2xx answer */
export class ApiClient {
  readonly url: string
  private readonly token: string

  constructor (options: ApiClientOptions) {
    this.url = options.url.replace(/\/+$/, '')
    this.token = options.token
  }

  async health (options: CallOptions = {}): Promise<HealthResponse> {
    return this.call('GET', '/v1/health', undefined, options)
  }

  async identity (options: CallOptions = {}): Promise<IdentityResponse> {
    return this.call('GET', '/v1/identity', undefined, options)
  }

  async send (to: string, message: ApiMessageInit, options: CallOptions & { sign?: boolean, delivery?: DeliveryMode, receipt?: boolean } = {}): Promise<SendResponse> {
    return this.call('POST', '/v1/messages', { to, message, sign: options.sign, delivery: options.delivery, receipt: options.receipt }, options)
  }

  /** The signed delivery receipt of a message sent with receipt: true; a stored one at once, else waits up to `timeoutMs` (504 E_TIMEOUT) */
  async receipt (id: string, options: CallOptions & { timeoutMs?: number } = {}): Promise<ReceiptResponse> {
    const query = `id=${encodeURIComponent(id)}${options.timeoutMs != null ? `&timeoutMs=${options.timeoutMs}` : ''}`
    return this.call('GET', `/v1/receipts?${query}`, undefined, withMargin(options))
  }

  async outbox (peer?: string, options: CallOptions = {}): Promise<OutboxResponse> {
    return this.call('GET', `/v1/outbox${peer != null ? `?peer=${encodeURIComponent(peer)}` : ''}`, undefined, options)
  }

  async request (to: string, message: ApiMessageInit, options: CallOptions & { sign?: boolean, timeoutMs?: number } = {}): Promise<RequestResponse> {
    return this.call('POST', '/v1/requests', { to, message, sign: options.sign, timeoutMs: options.timeoutMs }, withMargin(options))
  }

  async inbox (query: { after?: number, limit?: number } = {}, options: CallOptions = {}): Promise<InboxResponse> {
    const params = new URLSearchParams()
    if (query.after != null) params.set('after', String(query.after))
    if (query.limit != null) params.set('limit', String(query.limit))
    const search = params.size > 0 ? `?${params}` : ''
    return this.call('GET', `/v1/messages${search}`, undefined, options)
  }

  /** Record that everything up to `cursor` was processed (shown as `acked` in health) */
  async ack (cursor: number, options: CallOptions = {}): Promise<AckResponse> {
    return this.call('POST', '/v1/messages/ack', { cursor }, options)
  }

  async ping (to: string, options: CallOptions & { timeoutMs?: number } = {}): Promise<PingResponse> {
    return this.call('POST', '/v1/ping', { to, timeoutMs: options.timeoutMs }, withMargin(options))
  }

  /** Every agent the node knows, with status (connected / seen / stale) and last-seen time */
  async peers (options: CallOptions = {}): Promise<PeersResponse> {
    return this.call('GET', '/v1/peers', undefined, options)
  }

  /** Agents offering a capability, from the LAN and the DHT, each with its verified card */
  async discover (query: DiscoverQuery, options: CallOptions = {}): Promise<DiscoverResponse> {
    const params = new URLSearchParams({ capability: query.capability })
    if (query.limit != null) params.set('limit', String(query.limit))
    if (query.timeoutMs != null) params.set('timeoutMs', String(query.timeoutMs))
    return this.call('GET', `/v1/discover?${params}`, undefined, withMargin({ ...options, timeoutMs: query.timeoutMs }))
  }

  /** A peer's verified card, or the node's own without `peer` */
  async card (query: CardQuery = {}, options: CallOptions = {}): Promise<CardResponse> {
    const params = new URLSearchParams()
    if (query.peer != null) params.set('peer', query.peer)
    if (query.force === true) params.set('force', 'true')
    if (query.timeoutMs != null) params.set('timeoutMs', String(query.timeoutMs))
    const search = params.size > 0 ? `?${params}` : ''
    return this.call('GET', `/v1/card${search}`, undefined, withMargin({ ...options, timeoutMs: query.timeoutMs }))
  }

  /** The trust endpoints (`/v1/trust/…`): `path` is below /v1/trust */
  async trust<T = unknown> (method: 'GET' | 'POST', path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    return this.call<T>(method, `/v1/trust${path}`, body, options)
  }

  /** The key routes under /v1/key (protocols/identity.md, "Key rotation") */
  async key<T = unknown> (method: 'GET' | 'POST', path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    return this.call<T>(method, `/v1/key${path}`, body, options)
  }

  /** The task routes under /v1/tasks (protocols/tasks.md) */
  async tasks<T = unknown> (method: 'GET' | 'POST', path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    return this.call<T>(method, `/v1/tasks${path}`, body, options)
  }

  /** The team topic routes under /v1/topics (protocols/topics.md) */
  async topics<T = unknown> (method: 'GET' | 'POST', path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    return this.call<T>(method, `/v1/topics${path}`, body, options)
  }

  private async call<T> (method: 'GET' | 'POST', path: string, body: unknown, options: CallOptions): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: options.signal
    })
    const text = await res.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    if (res.ok) return json as T
    const error = (json as Partial<ErrorResponse> | undefined)?.error
    throw new ApiError(
      error?.message ?? `${method} ${path} failed with HTTP ${res.status}`,
      (error?.code ?? 'E_INTERNAL') as ErrorCode,
      res.status,
      error?.field
    )
  }
}

function withMargin (options: CallOptions & { timeoutMs?: number }): CallOptions {
  if (options.timeoutMs == null) return options
  const timeout = AbortSignal.timeout(options.timeoutMs + TIMEOUT_MARGIN_MS)
  return { signal: options.signal != null ? AbortSignal.any([options.signal, timeout]) : timeout }
}
