import { DISCOVERY_ERROR_CATEGORY, ERROR_CATEGORY, RECOVERABLE_CODES } from './constants.js'
import type { ErrorCategory, ErrorCode } from './types.js'

const CATEGORY: Readonly<Record<string, ErrorCategory>> = { ...ERROR_CATEGORY, ...DISCOVERY_ERROR_CATEGORY }

/** Category of an error code: the schema's table (spec §1.3), then the discovery codes */
export function errorCategory (code: ErrorCode): ErrorCategory {
  // 'execution' only for codes outside the union that slipped in at run time
  return CATEGORY[code] ?? 'execution'
}

/** Whether the sender may fix or retry after an error with this code */
export function isRecoverable (code: ErrorCode): boolean {
  return RECOVERABLE_CODES.has(code)
}
