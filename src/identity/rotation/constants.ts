import { day, minute } from '../../constants.js'

/** `type` of a key rotation statement (protocols/identity.md, "Key rotation") */
export const ROTATION_TYPE = 'molt-key-rotation'

/**
 * How long the old key of a rotation is still accepted after the statement's
 * `issued`: 7 days, in ms. Peers that have not heard of the rotation yet keep
 * reaching the agent meanwhile; after it every node that holds the statement
 * refuses the old key (messages, mailbox deposits, topics).
 */
export const ROTATION_GRACE_PERIOD = 7 * day

/** A statement `issued` further than this in the future is refused (clock skew allowance), in ms */
export const MAX_ROTATION_CLOCK_SKEW = 5 * minute

/** Largest statement (UTF-8 canonical JSON) a decoder accepts; checked before JSON.parse */
export const MAX_ROTATION_BYTES = 2 * 1024

/** Deepest nesting of a statement (it is one flat object) */
export const MAX_ROTATION_DEPTH = 2

/** Highest `seq`: the number of rotations one identity may go through */
export const MAX_ROTATION_SEQ = 1_000_000

/** Domain-separation prefixes: the old key signs one, the new key the other, so the two signatures cannot be swapped */
export const OLD_KEY_CONTEXT = 'molt-key-rotation/old-key\n'
export const NEW_KEY_CONTEXT = 'molt-key-rotation/new-key\n'

/** The agent's own rotation statements, in its data dir (republished at every start until their grace ends) */
export const ROTATIONS_FILE = 'key-rotations.json'

/** The new key written by a rotation before it replaces identity.key (a crash in between is finished at the next start) */
export const NEXT_KEY_FILE = 'identity.key.next'

/** Old keys kept for the grace period, `<data-dir>/retired-keys/<old PeerId>.key`, mode 0600 */
export const RETIRED_KEYS_DIR = 'retired-keys'

/** Own statements kept in ROTATIONS_FILE (older ones past their grace are dropped first) */
export const MAX_OWN_ROTATIONS = 64
