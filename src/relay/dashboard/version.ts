import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** package.json directories above this file: the source tree, dist/ or node_modules/molt */
const MAX_LEVELS = 6

let cached: string | undefined

/**
 * The version of the molt package this code belongs to, read once from the
 * nearest package.json named "molt" (the same code runs from src/, from dist/
 * and installed, each at a different depth); "unknown" if there is none.
 */
export function moltVersion (): string {
  if (cached !== undefined) return cached
  let version = 'unknown'
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < MAX_LEVELS; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (pkg?.name === 'molt' && typeof pkg.version === 'string') {
        version = pkg.version
        break
      }
    } catch {
      // no (readable) package.json here: look further up
    }
    dir = dirname(dir)
  }
  cached = version
  return version
}
