import type { StreamContext } from './stream.js'

/*
 * The shape of one API route, shared by routes.ts and the route tables it
 * composes (trust-routes.ts, task-routes.ts): kept apart so those import it
 * without importing routes.ts, which imports them.
 */

export type Method = 'GET' | 'POST'

export interface RouteContext {
  url: URL
  /** Parsed JSON body of a POST */
  body: unknown
  /** Aborted when the client goes away */
  signal: AbortSignal
}

export interface Route {
  /** Answers JSON */
  handler?: (context: RouteContext) => Promise<unknown>
  /** Writes the response itself (GET /v1/stream) */
  stream?: (context: StreamContext) => Promise<void>
  /** Served without the bearer token */
  public?: boolean
}
