import { exposition } from './exposition.js'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { FOREIGN_HOST_STATUS, isLoopbackHost } from '../api/origin.js'

/** Extra routes on the metrics port (the relay dashboard): true when it answered the request */
export type HttpRoutes = (req: IncomingMessage, res: ServerResponse) => boolean

export interface MetricsServerOptions {
  /** Asked first for every request except /metrics */
  routes?: HttpRoutes
}

export interface MetricsServer {
  port: number
  url: string
  close(): Promise<void>
}

/** Serve `GET /metrics` of one registry (and `options.routes`) on 127.0.0.1 only (no token: loopback only) */
export async function startMetricsServer (registry: Registry, port = 0, options: MetricsServerOptions = {}): Promise<MetricsServer> {
  const host = '127.0.0.1'
  const server = createServer((req, res) => {
    // every path, /metrics and 404s included: the port is loopback-only, and DNS rebinding would open it to web pages
    if (!isLoopbackHost(req.headers.host)) {
      res.writeHead(FOREIGN_HOST_STATUS, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
        .end('forbidden: this port answers only to loopback host names (127.0.0.1, localhost, [::1])\n')
      return
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (path !== '/metrics' && options.routes != null) {
      try {
        if (options.routes(req, res)) return
      } catch (err: any) {
        // a throw in a request listener would take the whole process down
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        res.end(`internal error: ${String(err?.message ?? err)}\n`)
        return
      }
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
      return
    }
    exposition(registry).then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, (err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`metrics collection failed: ${err.message}\n`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  return {
    port: address.port,
    url: `http://${host}:${address.port}/metrics`,
    close: async () => {
      const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      server.closeAllConnections()
      await closed
    }
  }
}
