/**
 * Longest a deferrable append (a batch whose acknowledgement nobody waits on:
 * the REQUESTs and REPLYs of speak 1.1.0, protocols/speak.md) waits for
 * others to share its LevelDB write, in ms. The dispatch (handler, reply)
 * does not wait for it; only the held ACK does.
 */
export const DEFER_WRITE_DELAY = 2 // ms

/** Deferred appends queued that make the write start at once (the gain of sharing flattens out) */
export const DEFER_WRITE_MAX_APPENDS = 64
