import * as c from './constants.js'

/** What a relay mailbox stores and accepts (protocols/mailbox.md "Limits") */
export interface MailboxLimits {
  /** Boxes waiting for one recipient */
  maxMessagesPerRecipient: number
  /** Bytes (base64, as stored) waiting for one recipient */
  maxBytesPerRecipient: number
  /** Share (0..1) of one recipient's quota one sender may fill */
  maxSenderShare: number
  maxTotalMessages: number
  maxTotalBytes: number
  /** Longest a box is kept, ms */
  retentionMs: number
  /** Deposits per second one sender may sustain */
  senderRate: number
  /** Deposits one sender may make in a burst */
  senderBurst: number
  /** Largest sealed box, bytes */
  maxBoxBytes: number
}

export type MailboxLimitsInit = Partial<MailboxLimits>

export function resolveMailboxLimits (init: MailboxLimitsInit = {}): MailboxLimits {
  const limits: MailboxLimits = {
    maxMessagesPerRecipient: init.maxMessagesPerRecipient ?? c.MAX_MESSAGES_PER_RECIPIENT,
    maxBytesPerRecipient: init.maxBytesPerRecipient ?? c.MAX_BYTES_PER_RECIPIENT,
    maxSenderShare: init.maxSenderShare ?? c.MAX_SENDER_SHARE,
    maxTotalMessages: init.maxTotalMessages ?? c.MAX_TOTAL_MESSAGES,
    maxTotalBytes: init.maxTotalBytes ?? c.MAX_TOTAL_BYTES,
    retentionMs: init.retentionMs ?? c.RETENTION,
    senderRate: init.senderRate ?? c.SENDER_RATE,
    senderBurst: init.senderBurst ?? c.SENDER_BURST,
    maxBoxBytes: init.maxBoxBytes ?? c.MAX_BOX_BYTES
  }
  for (const [field, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`mailbox limit ${field} must be a positive number`)
    }
  }
  if (limits.maxSenderShare > 1) throw new RangeError('mailbox limit maxSenderShare must be at most 1')
  return limits
}
