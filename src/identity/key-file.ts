import { open, readFile, stat, link, unlink, mkdir, chmod } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { IdentityError } from '../errors.js'

/** Key files are private to their owner: anything looser and we refuse to start */
export const KEY_FILE_MODE = 0o600

interface KeyFileJson {
  version: 1
  type: 'Ed25519'
  /** base64 of the libp2p protobuf private key encoding */
  privateKey: string
}

/**
 * Load the Ed25519 identity key at `path`, creating it (mode 0600) when the
 * file does not exist. A key file that other users can read, or that does not
 * parse, is an error: nothing is overwritten.
 */
export async function loadOrCreateKey (path: string): Promise<{ key: Ed25519PrivateKey, created: boolean }> {
  const existing = await loadKey(path)
  if (existing != null) {
    return { key: existing, created: false }
  }
  const key = await generateKeyPair('Ed25519')
  await writeKeyFile(path, key)
  return { key, created: true }
}

/** Load the key at `path`, or `undefined` when there is no file */
export async function loadKey (path: string): Promise<Ed25519PrivateKey | undefined> {
  let info
  try {
    info = await stat(path)
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw new IdentityError(`Cannot read key file ${path}: ${err.message}`)
  }
  if (!info.isFile()) {
    throw new IdentityError(`Key file ${path} is not a regular file`)
  }
  if ((info.mode & 0o077) !== 0) {
    throw new IdentityError(`Key file ${path} has mode ${(info.mode & 0o777).toString(8)}: it must be readable by its owner only (chmod 600 ${path})`)
  }
  const text = await readFile(path, 'utf8')
  let parsed: KeyFileJson
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new IdentityError(`Key file ${path} is corrupt (not JSON); move it away to create a new identity`)
  }
  if (parsed?.version !== 1 || parsed.type !== 'Ed25519' || typeof parsed.privateKey !== 'string') {
    throw new IdentityError(`Key file ${path} is corrupt (expected {"version":1,"type":"Ed25519","privateKey":…})`)
  }
  let key
  try {
    key = privateKeyFromProtobuf(Buffer.from(parsed.privateKey, 'base64'))
  } catch (err: any) {
    throw new IdentityError(`Key file ${path} holds no valid key: ${err.message}`)
  }
  if (key.type !== 'Ed25519') {
    throw new IdentityError(`Key file ${path} holds a ${key.type} key; molt identities are Ed25519`)
  }
  return key
}

/** Write atomically (mode 0600, never over an existing file): a crash never leaves a half-written key behind */
export async function writeKeyFile (path: string, key: Ed25519PrivateKey): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const body: KeyFileJson = {
    version: 1,
    type: 'Ed25519',
    privateKey: Buffer.from(privateKeyToProtobuf(key)).toString('base64')
  }
  const tmp = `${path}.${process.pid}.tmp`
  // O_EXCL: never follow a planted symlink or reuse someone else's file
  const handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, KEY_FILE_MODE)
  try {
    await handle.writeFile(JSON.stringify(body) + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  await chmod(tmp, KEY_FILE_MODE) // umask may have narrowed it further; make it exact
  try {
    // link() fails with EEXIST instead of replacing a key that appeared meanwhile
    await link(tmp, path)
  } catch (err: any) {
    if (err.code === 'EEXIST') {
      throw new IdentityError(`Key file ${path} appeared while creating a new one; not overwriting it`)
    }
    throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
}
