import { second, minute } from '../../constants.js'

/** Relays to keep a reservation on at once (more survive one relay dying) */
export const MAX_RESERVATIONS = 2

/** How often reservations are checked and missing ones re-made */
export const CHECK_INTERVAL = 5 * second

/** Backoff for a relay that refused or could not be reached */
export const RETRY_MIN = second
export const RETRY_MAX = minute

/** A reservation attempt must complete within this */
export const RESERVE_TIMEOUT = 10 * second
