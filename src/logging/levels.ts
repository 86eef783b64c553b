/** Severities, most severe first: a logger at level L writes L and everything before it */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export type LogLevel = typeof LOG_LEVELS[number]

/**
 * `pretty`: the human lines the CLI always printed (plus `<ts> <LEVEL> <msg> k=v`
 * for events that have no human form). `json`: one JSON object per line,
 * `{"ts","level","msg",...fields}`, for journald/Docker/log shippers.
 */
export const LOG_FORMATS = ['json', 'pretty'] as const
export type LogFormat = typeof LOG_FORMATS[number]

/** A --log-level / --log-format / MOLT_LOG_* / config.json `log.*` value that is not one of the allowed ones */
export class InvalidLogOptionError extends Error {
  static override name = 'InvalidLogOptionError'
  override name = 'InvalidLogOptionError'
  constructor (message: string, readonly option: 'level' | 'format') {
    super(message)
  }
}

export function isLogLevel (value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value)
}

export function isLogFormat (value: unknown): value is LogFormat {
  return typeof value === 'string' && (LOG_FORMATS as readonly string[]).includes(value)
}

/** `value` as a level; `source` names where it came from (`--log-level`, `MOLT_LOG_LEVEL`) in the error */
export function parseLogLevel (value: string, source = 'log level'): LogLevel {
  if (isLogLevel(value)) return value
  throw new InvalidLogOptionError(`${source} must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`, 'level')
}

export function parseLogFormat (value: string, source = 'log format'): LogFormat {
  if (isLogFormat(value)) return value
  throw new InvalidLogOptionError(`${source} must be one of ${LOG_FORMATS.join(', ')}, got "${value}"`, 'format')
}

/** Whether a logger at `threshold` writes a `level` line */
export function levelEnabled (threshold: LogLevel, level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(threshold)
}
