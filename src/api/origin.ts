import { isIP } from 'node:net'

/** 127.0.0.0/8, ::1, or localhost */
export function isLoopback (host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

/**
 * Whether a request's `Host` header names this machine's loopback (any port:
 * an SSH tunnel may forward another one). A server on 127.0.0.1 answers only
 * these: a web page the user opens could otherwise point its own DNS name at
 * 127.0.0.1 (DNS rebinding) and read the answers, since to the browser they
 * are same-origin. No header (HTTP/1.0; a browser always sends one): allowed.
 */
export function isLoopbackHost (host: string | undefined): boolean {
  if (host === undefined) return true
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
  return isLoopback(name.toLowerCase())
}

/** The status (and why) a server answers a request whose Host is not loopback */
export const FOREIGN_HOST_STATUS = 403

/**
 * Whether a WebSocket upgrade's `Origin` may connect. WebSockets are not
 * subject to CORS, so without this check any web page the user opens could
 * try the token against the local API. Absent (not a browser): allowed.
 * A page served from a loopback host: allowed. Anything else (`null`
 * included) only when listed exactly in `allowed` (e.g. `https://app.example`).
 */
export function isAllowedOrigin (origin: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin == null) return true
  if (allowed.has(origin)) return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopback(url.hostname)
}
