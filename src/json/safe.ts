import { NonErrorThrownError } from './errors.js'

/**
 * JSON.stringify that never throws. A value it cannot serialize (nested
 * past the call stack, a cycle, a BigInt) gives `fallback(err)` serialized
 * instead: one bad value must not end a page, a stream or the process.
 */
export function stringifyOr (value: unknown, fallback: (err: Error) => unknown): string {
  try {
    return JSON.stringify(value)
  } catch (err: any) {
    return JSON.stringify(fallback(err instanceof Error ? err : new NonErrorThrownError(String(err))))
  }
}
