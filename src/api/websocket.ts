import { STATUS_CODES, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { MoltNode } from '../node.js'
import { WS_PROTOCOL, WS_TOKEN_PROTOCOL_PREFIX, type TokenCheck } from './auth.js'
import { HttpError } from './errors.js'
import { toHttpError } from './error-status.js'
import { isAllowedOrigin } from './origin.js'
import { resumeCursor } from './stream.js'
import { entryJson } from '../inbox/index.js'

/*
 * GET /v1/stream with `Upgrade: websocket`: the same inbox push as the SSE
 * stream, one JSON text message per inbox entry. Built on `ws` in noServer
 * mode: the API's own node:http server hands its upgrade requests here.
 */

/** The one path that accepts WebSocket upgrades */
export const STREAM_PATH = '/v1/stream'

/** Stop reading the inbox while this many bytes wait in the socket's buffers; resume once they are written out */
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024

/** The stream is push only: client frames are ignored, and one larger than this closes the socket (1009) */
export const MAX_CLIENT_FRAME_BYTES = 4 * 1024

/** When the server closes, how long a client gets to answer the close frame before its socket is destroyed */
export const CLOSE_GRACE_MS = 1000

/** Close codes the server sends (RFC 6455 §7.4.1) */
export const CloseCode = {
  /** The node stopped or the API server is closing: reconnect (elsewhere or later) with `?after=<last cursor>` */
  GOING_AWAY: 1001,
  /** Reading the inbox failed: reconnect with `?after=<last cursor>` */
  INTERNAL_ERROR: 1011
} as const

export interface StreamSocketsOptions {
  token: TokenCheck
  /** Non-loopback origins (exact `scheme://host[:port]`) whose pages may open the socket */
  allowedOrigins: ReadonlySet<string>
  /** Interval of the ping frame; a client that has not answered the previous ping by then is dropped */
  keepaliveMs: number
  /** Throws an HttpError for a request whose Host the server does not answer */
  checkHost?: (req: IncomingMessage) => void
  /** @default DEFAULT_HIGH_WATER_MARK */
  highWaterMark?: number
}

/** The WebSocket side of GET /v1/stream, for every upgrade request of one API server */
export class StreamSockets {
  private readonly wss: WebSocketServer
  /** Aborted when the API server closes: every stream ends */
  private readonly shutdown = new AbortController()
  private readonly highWaterMark: number

  constructor (private readonly node: MoltNode, private readonly options: StreamSocketsOptions) {
    this.highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: true,
      // entries are small JSON lines pushed as they arrive; compression would cost CPU per message
      perMessageDeflate: false,
      maxPayload: MAX_CLIENT_FRAME_BYTES,
      handleProtocols: selectProtocol
    })
  }

  /** The HTTP server's `upgrade` listener: answer an error status, or hand the socket to `ws` */
  upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // until `ws` owns the socket, a reset by the client must not become an uncaught 'error'
    const onError = (): void => { socket.destroy() }
    socket.on('error', onError)
    let cursor: number
    try {
      if (this.shutdown.signal.aborted) throw new HttpError(503, 'E_INTERNAL', 'the API server is closing')
      this.options.checkHost?.(req)
      // a page's Origin first: a cross-site page learns nothing, not even whether its token guess was right
      const origin = req.headers.origin
      if (!isAllowedOrigin(origin, this.options.allowedOrigins)) {
        throw new HttpError(403, 'E_AUTH_FAILED', `WebSocket upgrades from origin ${origin ?? ''} are not allowed`)
      }
      if (!this.options.token.upgrade(req)) {
        throw new HttpError(401, 'E_AUTH_FAILED', `missing or wrong API token (Authorization: Bearer <token>, or the subprotocol ${WS_TOKEN_PROTOCOL_PREFIX}<token>)`)
      }
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (url.pathname !== STREAM_PATH) throw new HttpError(404, 'E_INVALID_PARAM', `no WebSocket endpoint at ${url.pathname} (only ${STREAM_PATH})`)
      if (req.headers.upgrade?.toLowerCase() !== 'websocket') throw new HttpError(400, 'E_INVALID_PARAM', 'only WebSocket upgrades are served')
      // fixed before the handshake completes: nothing stored once the client is open is missed
      cursor = resumeCursor(req, url) ?? this.node.inboxCursor()
    } catch (err) {
      refuse(socket, toHttpError(err))
      return
    }
    socket.off('error', onError)
    // `ws` validates the handshake itself (400 on a bad key or version)
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.serve(ws, cursor).catch(() => { ws.terminate() })
    })
  }

  /** Close every stream with 1001, destroying the sockets of clients that do not answer within CLOSE_GRACE_MS */
  async close (): Promise<void> {
    this.shutdown.abort()
    await Promise.all([...this.wss.clients].map(async (ws) => {
      if (ws.readyState === ws.CLOSED) return
      const closed = once(ws, 'close')
      ws.close(CloseCode.GOING_AWAY, 'server closing')
      const timer = setTimeout(() => { ws.terminate() }, CLOSE_GRACE_MS)
      try {
        await closed
      } finally {
        clearTimeout(timer)
      }
    }))
    await new Promise<void>((resolve) => { this.wss.close(() => { resolve() }) })
  }

  /** Push every inbox entry after `cursor`, then live ones, until the client, the node or the server goes */
  private async serve (ws: WebSocket, cursor: number): Promise<void> {
    // a protocol error of the client (an oversized or malformed frame): `ws` closes the socket with
    // the matching code (1009, 1002, 1007); without a listener the 'error' event would crash the node
    ws.on('error', () => {})
    if (this.shutdown.signal.aborted) {
      // the handshake finished while the server was closing
      ws.close(CloseCode.GOING_AWAY, 'server closing')
      return
    }
    const gone = new AbortController()
    ws.once('close', () => { gone.abort() })
    const signal = AbortSignal.any([gone.signal, this.shutdown.signal])
    const keepalive = this.keepalive(ws)
    try {
      for await (const entry of this.node.messages({ after: cursor, signal })) {
        // on its own: an entry that cannot be serialized is a placeholder with its cursor, not a 1011
        const text = entryJson(entry)
        // backpressure: past the high-water mark, stop reading the inbox until this entry (and all queued before it) reached the kernel
        if (ws.bufferedAmount < this.highWaterMark) ws.send(text)
        else await untilAborted(sendText(ws, text), signal)
        // dropped (no pong) or closing: 'close', which aborts the signal, may be a few ticks away
        if (ws.readyState !== ws.OPEN) break
      }
      // the iterator ends on its own only when the node stops
      if (!signal.aborted && ws.readyState === ws.OPEN) ws.close(CloseCode.GOING_AWAY, 'node stopped')
    } catch {
      if (signal.aborted) return
      if (this.node.libp2p.status !== 'started') ws.close(CloseCode.GOING_AWAY, 'node stopped')
      else ws.close(CloseCode.INTERNAL_ERROR, 'reading the inbox failed')
    } finally {
      clearInterval(keepalive)
    }
  }

  /** Ping every `keepaliveMs`; a client that left the previous ping unanswered is gone (half-open TCP) */
  private keepalive (ws: WebSocket): NodeJS.Timeout {
    let answered = true
    ws.on('pong', () => { answered = true })
    const timer = setInterval(() => {
      if (!answered) {
        ws.terminate()
        return
      }
      answered = false
      ws.ping()
    }, this.options.keepaliveMs)
    timer.unref()
    return timer
  }
}

/** `molt.v1` when offered; else the token subprotocol itself (a browser fails a handshake that selects none of its offers) */
function selectProtocol (protocols: Set<string>): string | false {
  if (protocols.has(WS_PROTOCOL)) return WS_PROTOCOL
  for (const protocol of protocols) {
    if (protocol.startsWith(WS_TOKEN_PROTOCOL_PREFIX)) return protocol
  }
  return false
}

/** Resolves once `text` was handed to the kernel, or failed to be (the `close` event ends the stream then) */
async function sendText (ws: WebSocket, text: string): Promise<void> {
  return new Promise((resolve) => { ws.send(text, () => { resolve() }) })
}

/** `promise`, or earlier when `signal` aborts */
async function untilAborted (promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  let onAbort = (): void => {}
  const aborted = new Promise<void>((resolve) => { onAbort = resolve })
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Answer an upgrade request with an HTTP error (the usual JSON body) and close the socket */
function refuse (socket: Duplex, err: HttpError): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const error: { code: string, message: string, field?: string } = { code: err.code, message: err.message }
  if (err.field !== undefined) error.field = err.field
  const body = JSON.stringify({ error })
  socket.end(
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n` +
    'connection: close\r\n' +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'cache-control: no-store\r\n\r\n' +
    body,
    () => { socket.destroy() }
  )
}
