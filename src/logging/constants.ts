/**
 * Defaults of molt's event lines (`molt agent`, `molt relay`): README.md
 * "Running a relay: dashboard and logs" describes them to operators.
 */
import type { LogFormat, LogLevel } from './levels.js'

/** info: what an operator wants by default (listening, stats, stopping, one line per received message) */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info'

/** pretty: the human lines the CLI always printed; `json` is for journald/Docker/log shippers */
export const DEFAULT_LOG_FORMAT: LogFormat = 'pretty'

/** Environment variables read by `molt agent` and `molt relay` (flags win, config.json `log.*` loses) */
export const LOG_LEVEL_ENV = 'MOLT_LOG_LEVEL'
export const LOG_FORMAT_ENV = 'MOLT_LOG_FORMAT'

/**
 * Longest an info/debug line waits to be written with others (batch loggers:
 * `molt agent`, `molt relay`), in ms. Per-message lines of request/response
 * traffic then cost one write per interval, not one per message; warn and
 * error lines, flush() and the process's exit write everything gathered first.
 */
export const LOG_BATCH_INTERVAL = 50

/**
 * Nesting levels of a line's fields written before a value is cut short to
 * `[…]` (fields are small summaries, never whole documents).
 */
export const MAX_FIELD_DEPTH = 6
