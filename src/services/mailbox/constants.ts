/**
 * Defaults of the relay mailbox (protocols/mailbox.md "Limits"). Each is a
 * `MailboxLimits` field a relay operator can change in config.json
 * `relay.mailbox` or by flag.
 */
import { MAX_MESSAGE_BYTES } from '../../moltspeak/constants.js'
import { SEAL_OVERHEAD } from '../../crypto/index.js'
import { second, minute, hour, day } from '../../constants.js'

const MiB = 1024 * 1024

/** Protocol id of store-and-forward deposits and fetches */
export const PROTOCOL = '/molt/mailbox/1.0.0'

/** A sealed box holds one MoltSpeak message (≤ 1 MiB) plus the seal's framing */
export const MAX_BOX_BYTES = MAX_MESSAGE_BYTES + SEAL_OVERHEAD

/**
 * Largest frame either side reads: a deposit or fetch answer of several
 * boxes, base64 inside JSON (4/3), plus the JSON around them. Bigger frames
 * end the stream before their body is buffered.
 */
export const MAX_FRAME_BYTES = 8 * MiB

/** Boxes one deposit frame carries at most (the client splits larger batches) */
export const MAX_ITEMS_PER_DEPOSIT = 1024

/** Bytes of boxes one deposit frame carries at most (the client splits above this) */
export const MAX_DEPOSIT_BYTES = 4 * MiB

/** Boxes a relay returns per fetch */
export const FETCH_LIMIT = 512

/** Boxes waiting for one recipient; beyond it deposits are refused `mailbox-full` */
export const MAX_MESSAGES_PER_RECIPIENT = 10_000

/** Bytes of boxes waiting for one recipient */
export const MAX_BYTES_PER_RECIPIENT = 64 * MiB

/**
 * Share of one recipient's quota that one sender may fill (0..1): a flood
 * from one sender is cut off while others can still reach the recipient.
 */
export const MAX_SENDER_SHARE = 0.5

/** Boxes the whole relay stores; beyond it deposits are refused `store-full` */
export const MAX_TOTAL_MESSAGES = 1_000_000

/** Bytes of boxes the whole relay stores */
export const MAX_TOTAL_BYTES = 1024 * MiB

/** Longest a box is kept (a deposit's own expiry is capped to this) */
export const RETENTION = 7 * day

/** Sustained deposits per second one sender may make (token bucket) */
export const SENDER_RATE = 2_000

/** Burst of deposits one sender may make before the rate applies */
export const SENDER_BURST = 20_000

/** How often expired boxes are deleted */
export const SWEEP_INTERVAL = 1 * minute

/** How often an agent checks the mailboxes of configured relays it is not connected to (it may have failed over) */
export const CHECK_INTERVAL = 10 * minute

/** Inbound mailbox streams per connection (a deposit stream and a fetch/watch stream, with slack) */
export const MAX_INBOUND_STREAMS = 8

/** How long a request may wait for its answer */
export const REQUEST_TIMEOUT = 30 * second

/** An idle mailbox stream is closed after this; a watch stream is kept alive by its notifications */
export const STREAM_IDLE_TIMEOUT = 1 * hour

export const LOG_COMPONENT = 'molt:mailbox'
