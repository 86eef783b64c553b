import { MAX_MESSAGE_BYTES } from '../../moltspeak/constants.js'
import { second, minute, hour } from '../../constants.js'

/** Protocol id of agent-to-agent MoltSpeak streams (protocols/speak.md) */
export const PROTOCOL = '/molt/speak/1.0.0'

/**
 * 1.0.0 plus replies on the request's stream, with the request's ACK carried
 * in the reply's write (protocols/speak.md, "Replies on the request's
 * stream"). Offered first; peers that only know 1.0.0 settle on it.
 */
export const PROTOCOL_REPLIES = '/molt/speak/1.1.0'

/**
 * Longest an ACK is held back to leave in the same write as the next frame
 * going that way (a REPLY, or the requester's next MESSAGE). Only ACKs nobody
 * waits on are held: those of REQUESTs (the requester waits for the reply) and
 * of REPLYs (the replier's send is not on anyone's path).
 */
export const ACK_DELAY = 5 // ms

/** A frame is type (1 byte) + seq (varint, ≤ 5 bytes) + one MoltSpeak message */
export const FRAME_OVERHEAD = 6
export const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + FRAME_OVERHEAD

/**
 * Frames above MAX_FRAME_BYTES but below this are read past and refused one by
 * one (E_INVALID_PARAM) without being buffered; anything larger ends the stream.
 */
export const MAX_SKIPPABLE_FRAME_BYTES = 16 * 1024 * 1024

/** How long a sent message may wait for its ack before the stream is declared dead */
export const ACK_TIMEOUT = 30 * second

/** Unacknowledged messages one peer session keeps in flight before send() waits */
export const MAX_IN_FLIGHT = 4096

/**
 * Low-priority messages in flight on a peer's low-band stream: the low work
 * the receiver has in hand (decoding, storing) while a high-priority message
 * arrives on its own stream (protocols/speak.md, "Priority bands")
 */
export const MAX_LOW_IN_FLIGHT = 32

/** Unacknowledged bytes one peer session keeps in flight before send() waits */
export const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024

/**
 * Unprocessed inbound bytes buffered per stream before reading is paused;
 * pausing stops yamux window updates, which is how a fast sender is slowed.
 */
export const READ_HIGH_WATER_BYTES = 4 * 1024 * 1024

/**
 * Speak streams per connection and direction. A sender keeps one long-lived
 * stream per priority band it uses (at most 3, protocols/speak.md "Priority
 * bands"), so 3 of an older peer's 4 inbound streams; the rest cover a band's
 * stream being replaced (restart, race) while the old one closes. Inbound,
 * each stream buffers at most READ_HIGH_WATER_BYTES: 6 × 4 MiB per connection.
 */
export const MAX_INBOUND_STREAMS = 6
export const MAX_OUTBOUND_STREAMS = 6

/** Duplicate message ids are remembered (and older messages refused) for this long */
export const REPLAY_WINDOW = 24 * hour

/** Upper bound on remembered ids; beyond it the oldest are forgotten first */
export const REPLAY_CACHE_SIZE = 100_000

/** A message stamped further than this in the future is refused */
export const MAX_CLOCK_SKEW = 5 * minute

/** An idle session stream is closed after this long and reopened on the next send */
export const STREAM_IDLE_TIMEOUT = 10 * minute

/** On stop, how long to wait for acks of already-received messages to leave */
export const STOP_DRAIN_TIMEOUT = 2 * second

/**
 * Times an unacknowledged message is re-sent on a fresh stream after its
 * session closed under it; safe because receivers de-duplicate by id
 */
export const SESSION_RETRIES = 2
