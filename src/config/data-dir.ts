import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { DEFAULT_DATA_DIR_NAME } from '../constants.js'

/** --data-dir beats MOLT_HOME beats ~/.molt */
export function resolveDataDir (explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit != null && explicit !== '') return resolve(explicit)
  if (env.MOLT_HOME != null && env.MOLT_HOME !== '') return resolve(env.MOLT_HOME)
  return join(homedir(), DEFAULT_DATA_DIR_NAME)
}
