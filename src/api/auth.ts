import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * Subprotocol a WebSocket client offers beside its token
 * (`new WebSocket(url, ['molt.v1', 'molt.token.<token>'])`); the server
 * selects it, so the token is never echoed in the handshake answer.
 */
export const WS_PROTOCOL = 'molt.v1'

/**
 * Prefix of the subprotocol that carries the token: browsers' WebSocket
 * cannot set an Authorization header, but can offer subprotocols.
 */
export const WS_TOKEN_PROTOCOL_PREFIX = 'molt.token.'

/** Constant-time comparison of presented tokens with the API token */
export class TokenCheck {
  // compare digests: equal lengths for timingSafeEqual, and the token's length stays private
  private readonly digest: Buffer

  constructor (token: string) {
    this.digest = digest(token)
  }

  matches (candidate: string | undefined): boolean {
    return candidate != null && candidate !== '' && timingSafeEqual(digest(candidate), this.digest)
  }

  /** `Authorization: Bearer <token>` (every HTTP request, and WebSocket clients that can set headers) */
  bearer (req: IncomingMessage): boolean {
    return this.matches(bearerToken(req))
  }

  /** The bearer header, or for a WebSocket upgrade the `molt.token.<token>` subprotocol */
  upgrade (req: IncomingMessage): boolean {
    return this.bearer(req) || this.matches(protocolToken(req))
  }
}

export function bearerToken (req: IncomingMessage): string | undefined {
  const header = req.headers.authorization
  const match = header != null ? /^Bearer (.+)$/i.exec(header) : null
  return match?.[1].trim()
}

/** The subprotocols a WebSocket upgrade offers, in order */
export function offeredProtocols (req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol']
  if (header == null) return []
  return header.split(',').map(value => value.trim()).filter(value => value !== '')
}

/** The token carried as a `molt.token.<token>` subprotocol, if any */
export function protocolToken (req: IncomingMessage): string | undefined {
  const offered = offeredProtocols(req).find(value => value.startsWith(WS_TOKEN_PROTOCOL_PREFIX))
  return offered?.slice(WS_TOKEN_PROTOCOL_PREFIX.length)
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}
