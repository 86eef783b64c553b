import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { join } from 'node:path'
import { API_TOKEN_FILE } from '../constants.js'
import { ApiTokenError } from './errors.js'

const TOKEN_PATTERN = /^[0-9a-f]{64}$/

/**
 * The data dir's API bearer token (32 random bytes, hex), created mode 0600
 * when missing. A token file other users can read is refused, not fixed: it
 * may already have leaked.
 */
export async function loadOrCreateApiToken (dataDir: string): Promise<string> {
  const existing = await loadApiToken(dataDir)
  if (existing != null) return existing
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = join(dataDir, API_TOKEN_FILE)
  const token = randomBytes(32).toString('hex')
  let handle
  try {
    // O_EXCL: never follow a planted symlink or clobber a token another process just wrote
    handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600)
  } catch (err: any) {
    if (err.code === 'EEXIST') return await loadApiToken(dataDir) ?? token
    throw new ApiTokenError(`Cannot create API token file ${path}: ${err.message}`)
  }
  try {
    await handle.writeFile(token + '\n')
  } finally {
    await handle.close()
  }
  return token
}

/** The data dir's API token, or `undefined` when there is no token file */
export async function loadApiToken (dataDir: string): Promise<string | undefined> {
  const path = join(dataDir, API_TOKEN_FILE)
  let info
  try {
    info = await stat(path)
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw new ApiTokenError(`Cannot read API token file ${path}: ${err.message}`)
  }
  if (!info.isFile()) throw new ApiTokenError(`API token file ${path} is not a regular file`)
  if ((info.mode & 0o077) !== 0) {
    throw new ApiTokenError(`API token file ${path} has mode ${(info.mode & 0o777).toString(8)}: it must be readable by its owner only; delete it to create a new token`)
  }
  const token = (await readFile(path, 'utf8')).trim()
  if (!TOKEN_PATTERN.test(token)) {
    throw new ApiTokenError(`API token file ${path} is corrupt (expected 64 hex characters); delete it to create a new token`)
  }
  return token
}
