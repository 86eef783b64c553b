import { link, mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { IDENTITY_FILE } from '../../constants.js'
import { identityFromKey, type Identity } from '../index.js'
import { loadKey, writeKeyFile, KEY_FILE_MODE } from '../key-file.js'
import { KeyRotationError } from './errors.js'
import { decodeRotation, peerIdOfMoltKey, signRotation, type KeyRotation } from './statement.js'
import * as c from './constants.js'

/** What a rotation of the data dir's key did */
export interface RotatedKeys {
  rotation: KeyRotation
  oldPeerId: string
  newPeerId: string
  newKey: Ed25519PrivateKey
  /** Unix ms from which peers refuse the old key */
  refusedFrom: number
  /** The old key, kept until `refusedFrom` */
  retiredKeyPath: string
}

/*
 * The data dir during a rotation (protocols/identity.md, "Key rotation, on disk"):
 *   1. the new key is written to identity.key.next (0600, never over a file)
 *   2. the signed statement is appended to key-rotations.json
 *   3. identity.key is hard-linked to retired-keys/<old PeerId>.key (0600)
 *   4. identity.key.next is renamed over identity.key (atomic)
 * A crash after 2 is finished by finishPendingRotation() at the next start;
 * a crash before it leaves the old identity in place (the next file is dropped).
 */

/**
 * Rotate the agent key of `dataDir`: sign "old → new" with both keys and
 * switch the files. The running node (if any) keeps its key until it restarts.
 *
 * @throws {KeyRotationError | IdentityError}
 */
export async function rotateKeyFiles (dataDir: string, options: { now?: number, minSeq?: number, expectedPeerId?: string } = {}): Promise<RotatedKeys> {
  const now = options.now ?? Date.now()
  await finishPendingRotation(dataDir, now)
  const keyPath = join(dataDir, IDENTITY_FILE)
  const oldKey = await loadKey(keyPath)
  if (oldKey === undefined) throw new KeyRotationError(`no agent key in ${dataDir} (run molt init first)`)
  const from = identityFromKey(oldKey)
  if (options.expectedPeerId !== undefined && from.peerId.toString() !== options.expectedPeerId) {
    throw new KeyRotationError(`the data dir's key is ${from.peerId.toString()} already, not the running ${options.expectedPeerId}: restart the agent on it before rotating again`)
  }
  const own = await loadOwnRotations(dataDir)
  const previous = own.find(r => r.new_key === from.moltKey)
  const seq = Math.max(previous !== undefined ? previous.seq + 1 : 1, options.minSeq ?? 1)
  const newKey = await generateKeyPair('Ed25519')
  const to: Identity = identityFromKey(newKey)
  // a statement issued before the one that brought this key in would be refused: never go back in time
  const rotation = signRotation(from, to, { seq, issued: Math.max(now, previous?.issued ?? 0) })
  await writeKeyFile(join(dataDir, c.NEXT_KEY_FILE), newKey)
  await saveOwnRotations(dataDir, [...own, rotation])
  const retiredKeyPath = await retireKey(dataDir, from.peerId.toString())
  await rename(join(dataDir, c.NEXT_KEY_FILE), keyPath)
  return {
    rotation,
    oldPeerId: from.peerId.toString(),
    newPeerId: to.peerId.toString(),
    newKey,
    refusedFrom: rotation.issued + c.ROTATION_GRACE_PERIOD,
    retiredKeyPath
  }
}

/**
 * At start: finish a rotation a crash interrupted (or drop its unsigned new
 * key), and delete retired keys whose grace period is over. Returns the
 * agent's own statements (to publish again: a peer that was away learns them).
 */
export async function finishPendingRotation (dataDir: string, now = Date.now()): Promise<KeyRotation[]> {
  const own = await loadOwnRotations(dataDir)
  const nextPath = join(dataDir, c.NEXT_KEY_FILE)
  const next = await loadKey(nextPath)
  if (next !== undefined) {
    const moltKey = identityFromKey(next).moltKey
    const rotation = own.find(r => r.new_key === moltKey)
    if (rotation === undefined) {
      // crashed before the statement was written: nothing was announced, the old key stays
      await unlink(nextPath)
    } else {
      const current = await loadKey(join(dataDir, IDENTITY_FILE))
      if (current !== undefined && identityFromKey(current).moltKey === rotation.old_key) await retireKey(dataDir, peerIdOfMoltKey(rotation.old_key))
      await rename(nextPath, join(dataDir, IDENTITY_FILE))
    }
  }
  await pruneRetiredKeys(dataDir, own, now)
  return own
}

/** The agent's own rotation statements (key-rotations.json), oldest first; [] when none */
export async function loadOwnRotations (dataDir: string): Promise<KeyRotation[]> {
  const path = join(dataDir, c.ROTATIONS_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return []
    throw new KeyRotationError(`cannot read ${path}: ${err.message as string}`)
  }
  if (text.length > c.MAX_OWN_ROTATIONS * c.MAX_ROTATION_BYTES) throw new KeyRotationError(`${path} is too large`)
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch {
    throw new KeyRotationError(`${path} is not JSON`)
  }
  if (!Array.isArray(list)) throw new KeyRotationError(`${path} must be an array of rotation statements`)
  return list.map(entry => decodeRotation(JSON.stringify(entry)))
}

async function saveOwnRotations (dataDir: string, list: KeyRotation[]): Promise<void> {
  const path = join(dataDir, c.ROTATIONS_FILE)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await writeFile(path + '.tmp', JSON.stringify(list.slice(-c.MAX_OWN_ROTATIONS)) + '\n', { mode: 0o600 })
  await rename(path + '.tmp', path)
}

/** Keep the current identity.key as retired-keys/<peer>.key (a hard link: same bytes, same 0600 mode) */
async function retireKey (dataDir: string, peer: string): Promise<string> {
  const dir = join(dataDir, c.RETIRED_KEYS_DIR)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, `${peer}.key`)
  try {
    await link(join(dataDir, IDENTITY_FILE), path)
  } catch (err: any) {
    if (err.code !== 'EEXIST') throw new KeyRotationError(`cannot keep the old key at ${path}: ${err.message as string}`)
  }
  const info = await stat(path)
  if ((info.mode & 0o777) !== KEY_FILE_MODE) throw new KeyRotationError(`${path} has mode ${(info.mode & 0o777).toString(8)}, not 600`)
  return path
}

async function pruneRetiredKeys (dataDir: string, own: KeyRotation[], now: number): Promise<void> {
  const dir = join(dataDir, c.RETIRED_KEYS_DIR)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return
  }
  const over = new Set(own.filter(r => now >= r.issued + c.ROTATION_GRACE_PERIOD).map(r => `${peerIdOfMoltKey(r.old_key)}.key`))
  for (const name of names) {
    if (over.has(name)) await unlink(join(dir, name))
  }
}
