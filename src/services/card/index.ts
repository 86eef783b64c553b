export { cards } from './card-service.js'
export type { CardService, CardInit, CardComponents, CardProfile, CardFetchOptions, CardStats } from './card-service.js'
export { signCard, verifyCard } from './card.js'
export type { AgentCard, UnsignedCard, Capability, VerifyCardOptions } from './card.js'
export {
  InvalidCardError, CardSignatureError, CardMismatchError, CardExpiredError, CardTooLargeError, CardTruncatedError,
  CardTimeoutError
} from './errors.js'
export { PROTOCOL, MAX_CARD_BYTES } from './constants.js'
