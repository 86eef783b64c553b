/** Nothing says how to reach the peer: no connection, no known address, no routing record in the DHT */
export class NoRouteError extends Error {
  static override name = 'NoRouteError'
  override name = 'NoRouteError'
}
