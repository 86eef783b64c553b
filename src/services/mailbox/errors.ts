import type { ErrorCode } from '../../moltspeak/index.js'

/** Why a relay refused a deposit (protocols/mailbox.md "Refusals") */
export type RefusalReason =
  | 'mailbox-full' | 'sender-quota' | 'store-full' | 'rate-limited' | 'too-large'
  | 'bad-signature' | 'not-sender' | 'malformed' | 'expired' | 'shutting-down' | 'storage-error'
  | 'unknown-recipient' | 'source-quota' | 'first-contact-quota'

/** A relay refused a mailbox request; `code` is the MoltSpeak code, `reason` says which limit or check */
export class MailboxRefusedError extends Error {
  static override name = 'MailboxRefusedError'
  override name = 'MailboxRefusedError'
  constructor (message: string, readonly code: ErrorCode, readonly reason: RefusalReason, readonly retryAfter?: number) {
    super(message)
  }
}

/** The mailbox stream broke a rule of the framing (bad varint, oversized frame, not JSON) */
export class MailboxProtocolError extends Error {
  static override name = 'MailboxProtocolError'
  override name = 'MailboxProtocolError'
}

/** The mailbox stream closed before the answer came */
export class MailboxClosedError extends Error {
  static override name = 'MailboxClosedError'
  override name = 'MailboxClosedError'
}

/** A mailbox peer read none of the relay's answers for as long as an idle stream may last: its stream is cut off */
export class MailboxStalledError extends Error {
  static override name = 'MailboxStalledError'
  override name = 'MailboxStalledError'
}
