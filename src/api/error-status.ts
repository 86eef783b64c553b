import { MoltSpeakError, type ErrorCode } from '../moltspeak/index.js'
import { HttpError } from './errors.js'

const TIMEOUTS = new Set(['RequestTimeoutError', 'AckTimeoutError', 'TimeoutError'])

/** Errors that mean "could not reach or keep talking to the peer" */
const UNREACHABLE = new Set([
  'DialError', 'DialDeniedError', 'NoValidAddressesError', 'ConnectionFailedError', 'ConnectionClosedError',
  'ConnectionClosingError', 'ConnectionDeniedError', 'ConnectionInterceptedError', 'EncryptionFailedError',
  'MuxerUnavailableError', 'MuxerClosedError', 'TransportUnavailableError', 'UnsupportedProtocolError',
  'UnexpectedPeerError', 'LimitedConnectionError', 'StreamResetError', 'StreamAbortedError', 'SessionClosedError',
  'AggregateError', 'NoRouteError'
])
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE'])

/** A card arrived but cannot be trusted or used (services/card errors): 422 with this code */
const INVALID_CARD: Readonly<Record<string, ErrorCode>> = {
  InvalidCardError: 'E_SCHEMA',
  CardSignatureError: 'E_SIGNATURE',
  CardMismatchError: 'E_SIGNATURE',
  CardExpiredError: 'E_INVALID_PARAM',
  CardTooLargeError: 'E_INVALID_PARAM'
}

/** The status and MoltSpeak code an error from the node is answered with */
export function toHttpError (err: unknown): HttpError {
  if (err instanceof HttpError) return err
  // the message itself (invalid per MoltSpeak, or refused by the peer)
  if (err instanceof MoltSpeakError) return new HttpError(422, err.code, err.message, err.field)
  const e = err as { name?: string, code?: string, message?: string } | undefined
  const message = e?.message ?? String(err)
  if (TIMEOUTS.has(e?.name ?? '')) return new HttpError(504, 'E_TIMEOUT', message)
  const cardCode = INVALID_CARD[e?.name ?? '']
  if (cardCode !== undefined) {
    const field = (err as { field?: unknown }).field
    return new HttpError(422, cardCode, `the peer's agent card is invalid: ${message}${typeof field === 'string' ? ` (card field ${field})` : ''}`)
  }
  // the peer is there but did not deliver a whole card in time: a failure of the peer, not of our deadline
  if (e?.name === 'CardTruncatedError' || e?.name === 'CardTimeoutError') return new HttpError(502, 'E_INTERNAL', `card fetch failed: ${message}`)
  if (UNREACHABLE.has(e?.name ?? '') || SOCKET_CODES.has(e?.code ?? '')) {
    return new HttpError(502, 'E_INTERNAL', `peer unreachable: ${message}`)
  }
  if (e?.name === 'MessageTooLargeError') return new HttpError(413, 'E_INVALID_PARAM', message, 'message')
  if (e?.name === 'NotStartedError') return new HttpError(503, 'E_INTERNAL', `node is not running: ${message}`)
  return new HttpError(500, 'E_INTERNAL', message)
}
