import type { IncomingMessage, ServerResponse } from 'node:http'
import { ThroughputHistory } from './throughput.js'
import { relayStatus, type RelayStatus, type StatusSource } from './status.js'
import { DASHBOARD_CSP, DASHBOARD_HTML } from './page.js'
import { moltVersion } from './version.js'
import * as c from './constants.js'
import { FOREIGN_HOST_STATUS, isLoopbackHost } from '../../api/origin.js'

export interface RelayDashboardOptions {
  /** Shown as the start of the uptime. @default when the dashboard is created (right after the relay started) */
  startedAt?: number
  /** Throughput sample period in ms. @default 2 s */
  sampleIntervalMs?: number
  /** How much throughput history to keep, in ms. @default 10 min */
  historyMs?: number
  /** @default Date.now */
  now?: () => number
}

/** The dashboard routes of one relay, to mount on an HTTP server (the relay's metrics server) */
export interface RelayDashboard {
  /**
   * Answer `req` if it is for the page or the status document; false (and
   * `res` untouched) for any other path, which the caller answers.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean
  /** The document GET /api/status answers */
  status(): Promise<RelayStatus>
  /** Stop sampling throughput */
  close(): void
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

/** Start keeping throughput history for `relay` and return its dashboard routes */
export function createRelayDashboard (relay: StatusSource, options: RelayDashboardOptions = {}): RelayDashboard {
  const now = options.now ?? Date.now
  const startedAt = options.startedAt ?? now()
  const intervalMs = options.sampleIntervalMs ?? c.THROUGHPUT_SAMPLE_INTERVAL
  const history = new ThroughputHistory(() => relay.stats().relayedBytes, {
    intervalMs,
    capacity: Math.max(1, Math.ceil((options.historyMs ?? c.THROUGHPUT_HISTORY) / intervalMs)),
    now
  })
  history.start()
  const version = moltVersion()
  const status = async (): Promise<RelayStatus> => relayStatus(relay, {
    version,
    startedAt,
    now: now(),
    throughput: { intervalMs, samples: history.samples() }
  })

  return {
    status,
    close: () => { history.stop() },
    handle (req, res) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      const page = c.DASHBOARD_PATHS.includes(path)
      if (!page && path !== c.STATUS_PATH) return false
      if (!isLoopbackHost(req.headers.host)) {
        res.writeHead(FOREIGN_HOST_STATUS, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS })
          .end(`forbidden: the dashboard answers only to ${c.ALLOWED_HOSTS.join(', ')}\n`)
        return true
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
        return true
      }
      if (page) {
        send(req, res, 'text/html; charset=utf-8', DASHBOARD_HTML, {
          'content-security-policy': DASHBOARD_CSP,
          'x-frame-options': 'DENY'
        })
        return true
      }
      status().then((document) => {
        send(req, res, 'application/json; charset=utf-8', JSON.stringify(document), {})
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end(`status failed: ${err.message}\n`)
      })
      return true
    }
  }
}

function send (req: IncomingMessage, res: ServerResponse, type: string, body: string, headers: Record<string, string>): void {
  res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...headers })
  res.end(req.method === 'HEAD' ? undefined : body)
}
