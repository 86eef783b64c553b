export { MAX_JSON_DEPTH } from './constants.js'
export { JsonSyntaxError, JsonTooDeepError } from './errors.js'
export { assertJsonDepth, parseBoundedJson } from './bounded.js'
export { stringifyOr } from './safe.js'
