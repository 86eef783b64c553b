import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { MoltNode } from '../node.js'
import { ClientClosedError, HttpError, RemoteHostRefusedError } from './errors.js'
import { parseJson, readBody, sendError, sendJson } from './http.js'
import { toHttpError } from './error-status.js'
import { createRoutes, type Method } from './routes.js'
import { TokenCheck } from './auth.js'
import { FOREIGN_HOST_STATUS, isLoopback, isLoopbackHost } from './origin.js'
import { DEFAULT_KEEPALIVE_MS } from './stream.js'
import { StreamSockets } from './websocket.js'

export { isLoopback }

export interface ApiServerOptions {
  /** 0 picks a free port. @default 0 */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
  /** Allow a non-loopback host: anyone who can reach it and holds the token controls the node. @default false */
  allowRemote?: boolean
  /** Bearer token every request but GET /v1/health must present */
  token: string
  /** @default 2 MiB */
  maxBodyBytes?: number
  /** Interval of the `: keepalive` comment (SSE) and of the ping frame (WebSocket) on GET /v1/stream. @default 15000 */
  keepaliveMs?: number
  /**
   * Origins besides loopback ones (exact `scheme://host[:port]`, or `null`)
   * whose web pages may open the WebSocket stream; other origins get 403.
   * @default []
   */
  allowedOrigins?: string[]
}

export interface ApiServer {
  port: number
  /** `http://<host>:<port>` */
  url: string
  close(): Promise<void>
}

const DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

/** Serve the node's local control API (JSON over HTTP, /v1) */
export async function startApiServer (node: MoltNode, options: ApiServerOptions): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1'
  if (!isLoopback(host) && options.allowRemote !== true) {
    throw new RemoteHostRefusedError(`Refusing to serve the API on non-loopback host ${host}: pass allowRemote to expose it`)
  }
  if (typeof options.token !== 'string' || options.token.length < 16) {
    throw new TypeError('startApiServer needs a token of at least 16 characters')
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const token = new TokenCheck(options.token)
  const keepaliveMs = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS
  const routes = createRoutes(node, performance.now(), { keepaliveMs })
  // on loopback, only loopback Host names (DNS rebinding); a server exposed with allowRemote is reached by names it cannot know
  const checkHost = (req: IncomingMessage): void => {
    if (isLoopback(host) && !isLoopbackHost(req.headers.host)) {
      throw new HttpError(FOREIGN_HOST_STATUS, 'E_AUTH_FAILED', 'this API answers only to loopback host names (127.0.0.1, localhost, [::1])')
    }
  }
  const sockets = new StreamSockets(node, { token, keepaliveMs, allowedOrigins: new Set(options.allowedOrigins ?? []), checkHost })

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const controller = new AbortController()
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new ClientClosedError('client closed the connection'))
    })
    try {
      // first, for every route (public ones too: /v1/health names the PeerId)
      checkHost(req)
      const url = new URL(req.url ?? '/', 'http://localhost')
      // `/dir/*` entries take a last path segment as a parameter (GET /v1/trust/{peer})
      const methods = routes.get(url.pathname) ?? routes.get(url.pathname.replace(/\/[^/]+$/, '/*'))
      const route = methods != null && Object.hasOwn(methods, req.method ?? '') ? methods[req.method as Method] : undefined
      if (route?.public !== true && !token.bearer(req)) {
        throw new HttpError(401, 'E_AUTH_FAILED', 'missing or wrong API token (Authorization: Bearer <token from the data dir\'s api-token file>)')
      }
      if (methods == null) throw new HttpError(404, 'E_INVALID_PARAM', `no such endpoint: ${url.pathname}`)
      if (route == null) {
        const allow = Object.keys(methods).join(', ')
        sendError(res, new HttpError(405, 'E_INVALID_PARAM', `${req.method ?? '?'} is not allowed on ${url.pathname} (allowed: ${allow})`), { allow })
        return
      }
      if (route.stream != null) {
        await route.stream({ url, req, res, signal: controller.signal })
        return
      }
      if (route.handler == null) throw new HttpError(500, 'E_INTERNAL', `no handler for ${url.pathname}`)
      const body = req.method === 'POST' ? parseJson(await readBody(req, maxBodyBytes)) : undefined
      sendJson(res, 200, await route.handler({ url, body, signal: controller.signal }))
    } catch (err) {
      sendError(res, toHttpError(err))
    }
  }

  const server = createServer((req, res) => {
    serve(req, res).catch(() => { res.destroy() })
  })
  // GET /v1/stream with Upgrade: websocket (any other upgrade is refused there)
  server.on('upgrade', (req, socket, head) => { sockets.upgrade(req, socket, head) })
  // malformed HTTP: answer 400 and drop the socket; never let it reach 'error'
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n')
    else socket.destroy()
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  return {
    port,
    url: `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      // long requests (a reply wait) would hold close() open for up to their timeout
      server.closeAllConnections()
      // upgraded sockets are no longer the HTTP server's to close
      await sockets.close()
      await closed
    }
  }
}
