import { isIP } from 'node:net'

/** 127.0.0.0/8, ::1, or localhost */
export function isLoopback (host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

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
