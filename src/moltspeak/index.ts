export type {
  AgentRef, Classification, ErrorCategory, ErrorCode, ErrorPayload, ErrorSuggestion, MoltMessage, Op, PiiMeta,
  PiiType, SchemaErrorCode, SuggestionAction
} from './types.js'
export * from './constants.js'
export { errorCategory, isRecoverable } from './codes.js'
export { MoltSpeakError, CanonicalizationError, InvalidKeyError, type MoltSpeakErrorOptions } from './errors.js'
export { canonicalize, formatNumber, pythonFloatRepr, utf8Length } from './canonical.js'
export { canonicalizeSource, checkSource } from './source.js'
export {
  publicKeyToMoltKey, moltKeyToRaw, moltKeyToKeyObject, rawPublicKeyToKeyObject, rawPrivateKeyToKeyObject,
  keyObjectToRawPublicKey
} from './keys.js'
export {
  signMessage, verifyMessage, verifyMessageAsync, verifyMessageSource, verifyMessageSourceAsync, signingBytes, sourceSigningBytes
} from './sign.js'
export { parseMessage, validateMessage, isMoltSpeakName, type ValidateOptions } from './validate.js'
export {
  newMessageId, createMessage, replyTo, replyClassification, query, respond, task, stream, tool, consent, errorPayload, hello, ping, pong,
  type MessageInit, type ReplyInit, type QueryPayload, type RespondPayload, type TaskPayload, type StreamPayload,
  type ToolPayload, type ConsentPayload, type HelloPayload, type PingPayload, type PongPayload, type PongInit, type ResponseFormat,
  type Subtask, type ErrorPayloadOptions, type RespondStatus, type TaskAction, type TaskPriority, type StreamAction,
  type ToolAction, type ConsentAction, type ConsentDuration
} from './builders.js'
export { EXTENSION_OPS, EXTENSION_CODES, MOLT_EXTENSION, helloSpeaksMolt, schemaErrorPayload } from './extensions.js'
export { checkMessageDepth, checkValueDepth } from './depth.js'
