export { DEFAULT_LOG_LEVEL, DEFAULT_LOG_FORMAT, LOG_LEVEL_ENV, LOG_FORMAT_ENV, LOG_BATCH_INTERVAL, MAX_FIELD_DEPTH } from './constants.js'
export {
  LOG_LEVELS, LOG_FORMATS,
  InvalidLogOptionError, isLogLevel, isLogFormat, parseLogLevel, parseLogFormat, levelEnabled,
  type LogLevel, type LogFormat
} from './levels.js'
export { StructuredLogger, formatLogLine, REDACTED_FIELDS, type LogFields, type LoggerInit } from './logger.js'
export { resolveLogOptions, type LogOptions, type LogOptionSources } from './options.js'
