/** The record is malformed: not JSON, a field missing, of the wrong type or over its limit (`field` names it) */
export class InvalidRouteRecordError extends Error {
  static override name = 'InvalidRouteRecordError'
  override name = 'InvalidRouteRecordError'
  constructor (message: string, readonly field: string) {
    super(message)
  }
}

/** The encoded record is larger than MAX_RECORD_BYTES or nests deeper than MAX_RECORD_DEPTH (it was not parsed) */
export class RouteRecordTooLargeError extends Error {
  static override name = 'RouteRecordTooLargeError'
  override name = 'RouteRecordTooLargeError'
}

/** The record's `sig` is not a valid signature by the key of the PeerId it is for */
export class RouteRecordSignatureError extends Error {
  static override name = 'RouteRecordSignatureError'
  override name = 'RouteRecordSignatureError'
}

/** The record is for another PeerId than its DHT key names, or the key is not a routing record key */
export class RouteRecordMismatchError extends Error {
  static override name = 'RouteRecordMismatchError'
  override name = 'RouteRecordMismatchError'
}

/** The record's `exp` has passed, or lies further ahead than MAX_RECORD_TTL, or its `seq` is in the future */
export class RouteRecordExpiredError extends Error {
  static override name = 'RouteRecordExpiredError'
  override name = 'RouteRecordExpiredError'
}

/** A DHT server already holds a newer record of this agent (an older one replayed is refused) */
export class RouteRecordStaleError extends Error {
  static override name = 'RouteRecordStaleError'
  override name = 'RouteRecordStaleError'
}
