export { speak, type Speak, type SpeakInit, type SpeakComponents, type SpeakStats } from './speak.js'
export type { InboundMessage, Route } from './inbound.js'
export { AckTimeoutError, SessionClosedError, MessageTooLargeError } from './errors.js'
export { PROTOCOL as SPEAK_PROTOCOL } from './constants.js'
