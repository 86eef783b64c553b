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
  /** Share (0..1) of one recipient's quota one source address (IPv4, IPv6 /64) may fill */
  maxSourceShare: number
  /** Share (0..1) of the whole store one source address may fill */
  maxSourceTotalShare: number
  /** Share (0..1) of one recipient's quota all first-contact senders together may fill */
  firstContactShare: number
  /** Longest a first-contact sender's box is kept, ms */
  firstContactRetentionMs: number
  /** Deposits per second one source address may sustain */
  sourceRate: number
  /** Deposits one source address may make in a burst */
  sourceBurst: number
  /** Recipients registered at once */
  maxRegistrations: number
  /** Recipients registered from one source address */
  maxRegistrationsPerSource: number
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
    maxBoxBytes: init.maxBoxBytes ?? c.MAX_BOX_BYTES,
    maxSourceShare: init.maxSourceShare ?? c.MAX_SOURCE_SHARE,
    maxSourceTotalShare: init.maxSourceTotalShare ?? c.MAX_SOURCE_TOTAL_SHARE,
    firstContactShare: init.firstContactShare ?? c.FIRST_CONTACT_SHARE,
    firstContactRetentionMs: init.firstContactRetentionMs ?? c.FIRST_CONTACT_RETENTION,
    sourceRate: init.sourceRate ?? c.SOURCE_RATE,
    sourceBurst: init.sourceBurst ?? c.SOURCE_BURST,
    maxRegistrations: init.maxRegistrations ?? c.MAX_REGISTRATIONS,
    maxRegistrationsPerSource: init.maxRegistrationsPerSource ?? c.MAX_REGISTRATIONS_PER_SOURCE
  }
  for (const [field, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new RangeError(`mailbox limit ${field} must be a positive number`)
    }
  }
  for (const field of ['maxSenderShare', 'maxSourceShare', 'maxSourceTotalShare', 'firstContactShare'] as const) {
    if (limits[field] > 1) throw new RangeError(`mailbox limit ${field} must be at most 1`)
  }
  return limits
}
