import { minute } from '../../constants.js'

/** Gossipsub topic of a team topic: `molt/topic/<name>` (protocols/topics.md) */
export const TOPIC_PREFIX = 'molt/topic/'

/** Allowed topic names: a team or a capability (`translators`, `translate.text`) */
export const TOPIC_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Largest topic message (the MoltSpeak JSON with its signature), in bytes; bigger ones are refused and the publisher penalised */
export const MAX_TOPIC_MESSAGE_BYTES = 64 * 1024

/** Topics one node joins at most */
export const MAX_TOPICS = 64

/** Messages from one publisher accepted in a burst, per node (token bucket size; the trust topic's issuer limit) */
export const PUBLISHER_BURST = 30

/** Messages per minute one publisher may send once its burst is spent (token refill rate; the trust topic's) */
export const PUBLISHER_RATE_PER_MINUTE = 30

/** Publishers whose rate buckets are remembered; the least recently seen is forgotten first */
export const MAX_RATE_BUCKETS = 10_000

/**
 * A topic message older than this (by its `ts`), or dated further ahead than
 * MAX_CLOCK_SKEW, is dropped without a penalty; ids are remembered this long
 * so a replay after gossipsub's 2-minute seen-cache is still recognised
 */
export const MAX_TOPIC_MESSAGE_AGE = 10 * minute

/** `ts` allowed ahead of this node's clock, in ms */
export const MAX_CLOCK_SKEW = 5 * minute

/** Message ids remembered for MAX_TOPIC_MESSAGE_AGE (replay window) */
export const MAX_REMEMBERED_IDS = 100_000
