import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { MoltNode } from '../node.js'
import { HttpError, RemoteHostRefusedError } from './errors.js'
import { parseJson, readBody, sendError, sendJson } from './http.js'
import { toHttpError } from './error-status.js'
import { createRoutes, type Method } from './routes.js'

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
  /** Interval of the `: keepalive` comment on GET /v1/stream. @default 15000 */
  keepaliveMs?: number
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
  // compare digests: equal lengths for timingSafeEqual, and the token's length stays private
  const tokenDigest = digest(options.token)
  const routes = createRoutes(node, performance.now(), { keepaliveMs: options.keepaliveMs })

  const authorized = (req: IncomingMessage): boolean => {
    const header = req.headers.authorization
    const match = header != null ? /^Bearer (.+)$/i.exec(header) : null
    return match != null && timingSafeEqual(digest(match[1].trim()), tokenDigest)
  }

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const controller = new AbortController()
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new Error('client closed the connection'))
    })
    try {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const methods = routes.get(url.pathname)
      const route = methods != null && Object.hasOwn(methods, req.method ?? '') ? methods[req.method as Method] : undefined
      if (route?.public !== true && !authorized(req)) {
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
      await closed
    }
  }
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** 127.0.0.0/8, ::1, or localhost */
export function isLoopback (host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true
  return isIP(host) === 4 && host.startsWith('127.')
}
