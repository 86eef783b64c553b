import { parseLogFormat, parseLogLevel, type LogFormat, type LogLevel } from './levels.js'
import { DEFAULT_LOG_FORMAT, DEFAULT_LOG_LEVEL } from './constants.js'

export interface LogOptions {
  level: LogLevel
  format: LogFormat
}

/** Raw texts from the command line; undefined = not given */
export interface LogOptionSources {
  level?: string
  format?: string
}

/**
 * Flags over `base` (config.json `log` with MOLT_LOG_* applied, already
 * validated by the config layer) over the defaults. A bad flag value throws
 * InvalidLogOptionError naming the flag.
 */
export function resolveLogOptions (flags: LogOptionSources, base: Partial<LogOptions> = {}): LogOptions {
  return {
    level: flags.level !== undefined ? parseLogLevel(flags.level, '--log-level') : base.level ?? DEFAULT_LOG_LEVEL,
    format: flags.format !== undefined ? parseLogFormat(flags.format, '--log-format') : base.format ?? DEFAULT_LOG_FORMAT
  }
}
