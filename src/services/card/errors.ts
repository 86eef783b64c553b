/** The card is malformed: a field is missing, of the wrong type or over its limit (`field` names it) */
export class InvalidCardError extends Error {
  static override name = 'InvalidCardError'
  override name = 'InvalidCardError'
  constructor (message: string, readonly field: string) {
    super(message)
  }
}

/** The card's `sig` is not a valid Ed25519 signature by its `key` */
export class CardSignatureError extends Error {
  static override name = 'CardSignatureError'
  override name = 'CardSignatureError'
}

/** The card's `key`, `peer_id` and `did` do not name the same agent, or it is not the card of the peer that served it */
export class CardMismatchError extends Error {
  static override name = 'CardMismatchError'
  override name = 'CardMismatchError'
}

/** The card's `expires` has passed */
export class CardExpiredError extends Error {
  static override name = 'CardExpiredError'
  override name = 'CardExpiredError'
}

/** The card frame's length prefix is over the limit (the body was never read), or a card to sign does not fit */
export class CardTooLargeError extends Error {
  static override name = 'CardTooLargeError'
  override name = 'CardTooLargeError'
}

/** The stream ended before one whole card frame arrived (`received` bytes came, none at all when 0) */
export class CardTruncatedError extends Error {
  static override name = 'CardTruncatedError'
  override name = 'CardTruncatedError'
  constructor (message: string, readonly received: number) {
    super(message)
  }
}

/** The peer did not deliver its card within the fetch timeout */
export class CardTimeoutError extends Error {
  static override name = 'CardTimeoutError'
  override name = 'CardTimeoutError'
}

/** The card service stopped: fetches in progress are abandoned and new streams refused */
export class CardServiceStoppedError extends Error {
  static override name = 'CardServiceStoppedError'
  override name = 'CardServiceStoppedError'
}
