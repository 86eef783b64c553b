import type { ErrorCode } from '../moltspeak/index.js'

/** The API token file is unreadable, malformed or readable by other users */
export class ApiTokenError extends Error {
  static override name = 'ApiTokenError'
  override name = 'ApiTokenError'
}

/** The API server was asked to listen on a non-loopback host without `allowRemote` */
export class RemoteHostRefusedError extends Error {
  static override name = 'RemoteHostRefusedError'
  override name = 'RemoteHostRefusedError'
}

/** Another process holds the data dir's node lock but serves no API we can reach */
export class AgentApiUnavailableError extends Error {
  static override name = 'AgentApiUnavailableError'
  override name = 'AgentApiUnavailableError'
}

/** The local API answered with a non-2xx status */
export class ApiError extends Error {
  static override name = 'ApiError'
  override name = 'ApiError'
  constructor (message: string, readonly code: ErrorCode, readonly status: number, readonly field?: string) {
    super(message)
  }
}

/** A request the server answers with an error status (thrown inside route handlers) */
export class HttpError extends Error {
  static override name = 'HttpError'
  override name = 'HttpError'
  constructor (readonly status: number, readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message)
  }
}

/** The HTTP client closed its connection before the answer was written: the request's work is aborted */
export class ClientClosedError extends Error {
  static override name = 'ClientClosedError'
  override name = 'ClientClosedError'
}
