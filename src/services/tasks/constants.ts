import { second, minute, day } from '../../constants.js'

/**
 * The lifecycle states (protocols/tasks.md). `created` → `offered` →
 * `claimed` (granted to one agent) → `running` (first progress) → one of the
 * terminal states. `refused` is a claimant's own terminal state: its claim
 * lost to another agent's, or was refused for another reason.
 */
export const TASK_STATES = Object.freeze([
  'created', 'offered', 'claimed', 'running', 'completed', 'failed', 'cancelled', 'expired', 'refused'
] as const)

/** States after which a task never changes again */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled', 'expired', 'refused'])

/** The protocol step a `task` message carries in `p.step` (its `p.action` stays within MoltSpeak's enum) */
export const TASK_STEPS = Object.freeze(['offer', 'claim', 'grant', 'progress', 'cancel'] as const)

/** Error codes of claim refusals, sent as MoltSpeak `error` messages (`re` = the claim) */
export const TASK_ERROR_CODES = Object.freeze({
  /** Another agent's claim was granted first */
  CLAIMED: 'E_TASK_CLAIMED',
  /** The offerer knows no task of that id */
  UNKNOWN: 'E_TASK_UNKNOWN',
  /** The task was not offered to the claimant */
  NOT_OFFERED: 'E_TASK_NOT_OFFERED',
  /** The task is cancelled, expired or finished */
  CLOSED: 'E_TASK_CLOSED'
} as const)

/** Allowed task ids: offerers pick them (a UUID by default) */
export const TASK_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** Most agents one offer goes to */
export const MAX_OFFER_PEERS = 64

/** Tasks kept in the store; beyond it the oldest finished ones are dropped, then new ones refused */
export const MAX_TASKS = 100_000

/** Unfinished tasks one offerer may have open at this node; its further offers are ignored (a flood cannot fill the store) */
export const MAX_OPEN_OFFERS_PER_PEER = 1000

/** Longest `description`, progress `note` or failure message kept, in characters */
export const MAX_TEXT_LENGTH = 4096

/**
 * A claim the offerer acknowledged but did not decide (it crashed between the
 * ack and the persisted decision) is sent again after this many ms, under the
 * same `claim_id`: arbitration is idempotent, so a repeat is harmless
 */
export const CLAIM_RETRY_INTERVAL = 15 * second

/** How long `claim()` waits for the grant or refusal by default, in ms */
export const DEFAULT_CLAIM_TIMEOUT = 30 * second

/** An offer without a deadline expires after this many ms */
export const DEFAULT_TASK_TTL = 7 * day

/** Longest deadline an offer may set, from now, in ms */
export const MAX_TASK_TTL = 30 * day

/** setTimeout's largest delay (a longer one fires at once); expiry timers are re-armed past it */
export const MAX_TIMER = 24 * day

/** How often finished tasks are pruned when the store is over MAX_TASKS */
export const PRUNE_INTERVAL = minute
