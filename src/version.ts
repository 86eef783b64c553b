import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { name as libp2pName, version as libp2pVersion } from 'libp2p/version'

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

/**
 * What identify announces as this node's agent version, e.g.
 * `molt/0.1.0 js-libp2p/3.3.11 node/22.23.3`: operators (the relay
 * dashboard, `molt peers`) see which software a peer runs.
 */
export function moltAgentVersion (): string {
  return `molt/${moltVersion()} ${libp2pName}/${libp2pVersion} node/${process.versions.node}`
}
