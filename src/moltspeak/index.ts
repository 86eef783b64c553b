export type {
  AgentRef, Classification, ErrorCategory, ErrorCode, ErrorPayload, ErrorSuggestion, MoltMessage, Op, PiiMeta,
  PiiType, SchemaErrorCode, SuggestionAction
} from './types.js'
export * from './constants.js'
export { errorCategory, isRecoverable } from './codes.js'
export { MoltSpeakError, CanonicalizationError, InvalidKeyError, type MoltSpeakErrorOptions } from './errors.js'
export { canonicalize, utf8Length } from './canonical.js'
export {
  publicKeyToMoltKey, moltKeyToRaw, moltKeyToKeyObject, rawPublicKeyToKeyObject, rawPrivateKeyToKeyObject,
  keyObjectToRawPublicKey
} from './keys.js'
export { signMessage, verifyMessage, verifyMessageAsync, signingBytes } from './sign.js'
export { parseMessage, validateMessage, type ValidateOptions } from './validate.js'
export {
  newMessageId, createMessage, replyTo, query, respond, task, stream, tool, consent, errorPayload, hello, ping, pong,
  type MessageInit, type ReplyInit, type QueryPayload, type RespondPayload, type TaskPayload, type StreamPayload,
  type ToolPayload, type ConsentPayload, type HelloPayload, type PingPayload, type PongPayload, type PongInit, type ResponseFormat,
  type Subtask, type ErrorPayloadOptions, type RespondStatus, type TaskAction, type TaskPriority, type StreamAction,
  type ToolAction, type ConsentAction, type ConsentDuration
} from './builders.js'
export { checkMessageDepth, checkValueDepth } from './depth.js'
