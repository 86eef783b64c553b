import { createCipheriv, createDecipheriv, createPrivateKey, generateKeyPairSync, randomBytes, scrypt as scryptCallback, type KeyObject } from 'node:crypto'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { keyObjectToRawPublicKey, publicKeyToMoltKey, MAX_NAME_LENGTH, NAME_PATTERN } from '../../moltspeak/index.js'
import { OrgKeyError } from './errors.js'
import * as c from './constants.js'

const scrypt = promisify(scryptCallback) as (password: string, salt: Buffer, keylen: number, options: object) => Promise<Buffer>

/** An organisation's signing key, loaded */
export interface OrgKey {
  name: string
  /** `ed25519:<base64>`: what verifiers put in `trust.orgs` */
  publicKey: string
  privateKey: KeyObject
}

/** The scrypt + AES-256-GCM envelope of an encrypted org key (all binary fields base64) */
interface Encrypted {
  kdf: 'scrypt'
  N: number
  r: number
  p: number
  salt: string
  cipher: 'aes-256-gcm'
  iv: string
  tag: string
  data: string
}

interface OrgKeyFile {
  version: 1
  type: 'molt-org-key'
  org: string
  public_key: string
  /** base64 of the PKCS#8 DER private key, when not encrypted */
  private_key?: string
  encrypted?: Encrypted
}

/** `<dataDir>/org/<name>.key`, or `<orgDir>/<name>.key` */
export function orgKeyPath (name: string, dataDir: string, orgDir?: string): string {
  checkOrgName(name)
  return join(orgDir ?? join(dataDir, c.ORG_DIR), `${name}.key`)
}

export function checkOrgName (name: string): void {
  if (!NAME_PATTERN.test(name) || name.length > MAX_NAME_LENGTH) {
    throw new OrgKeyError(`organisation name must be 1-${MAX_NAME_LENGTH} characters of [A-Za-z0-9_-]`)
  }
}

/**
 * Create a new organisation key at `path` (mode 0600, directory 0700).
 * An existing file is never overwritten. With a passphrase the PKCS#8 key is
 * sealed with AES-256-GCM under a scrypt-derived key (node:crypto only).
 */
export async function createOrgKey (path: string, name: string, options: { passphrase?: string } = {}): Promise<OrgKey> {
  checkOrgName(name)
  const { privateKey } = generateKeyPairSync('ed25519')
  const publicKey = publicKeyToMoltKey(keyObjectToRawPublicKey(privateKey))
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  const file: OrgKeyFile = { version: 1, type: 'molt-org-key', org: name, public_key: publicKey }
  if (options.passphrase !== undefined) {
    if (options.passphrase.length === 0) throw new OrgKeyError('the passphrase is empty')
    file.encrypted = await seal(der, options.passphrase)
  } else {
    file.private_key = der.toString('base64')
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  let handle
  try {
    handle = await open(path, 'wx', c.ORG_KEY_FILE_MODE)
  } catch (err: any) {
    if (err.code === 'EEXIST') throw new OrgKeyError(`${path} already exists: an organisation key is never overwritten`)
    throw new OrgKeyError(`cannot create ${path}: ${err.message as string}`)
  }
  try {
    await handle.writeFile(JSON.stringify(file, null, 2) + '\n')
    await handle.sync()
  } finally {
    await handle.close()
  }
  return { name, publicKey, privateKey }
}

/**
 * Load the organisation key at `path`. Refused: a file others can read, one
 * over MAX_ORG_KEY_FILE_BYTES, a corrupt one, an encrypted one without the
 * right passphrase, one whose private key does not match its public key.
 */
export async function loadOrgKey (path: string, options: { passphrase?: string } = {}): Promise<OrgKey> {
  let info
  try {
    info = await stat(path)
  } catch (err: any) {
    throw new OrgKeyError(err.code === 'ENOENT' ? `no organisation key at ${path} (create one with molt org init)` : `cannot read ${path}: ${err.message as string}`)
  }
  if (!info.isFile()) throw new OrgKeyError(`${path} is not a regular file`)
  if ((info.mode & 0o077) !== 0) throw new OrgKeyError(`${path} has mode ${(info.mode & 0o777).toString(8)}: it must be readable by its owner only (chmod 600 ${path})`)
  if (info.size > c.MAX_ORG_KEY_FILE_BYTES) throw new OrgKeyError(`${path} is ${info.size} bytes: not an organisation key file`)
  let file: OrgKeyFile
  try {
    file = JSON.parse(await readFile(path, 'utf8'))
  } catch {
    throw new OrgKeyError(`${path} is corrupt (not JSON)`)
  }
  if (file?.version !== 1 || file.type !== 'molt-org-key' || typeof file.org !== 'string' || typeof file.public_key !== 'string') {
    throw new OrgKeyError(`${path} is not a molt organisation key file`)
  }
  let der: Buffer
  if (file.encrypted !== undefined) {
    if (options.passphrase === undefined) throw new OrgKeyError(`${path} is encrypted: give its passphrase (--passphrase-file or MOLT_ORG_PASSPHRASE)`)
    der = await unseal(file.encrypted, options.passphrase, path)
  } else if (typeof file.private_key === 'string') {
    der = Buffer.from(file.private_key, 'base64')
  } else {
    throw new OrgKeyError(`${path} holds no private key`)
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } catch {
    throw new OrgKeyError(`${path} holds an unusable private key`)
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new OrgKeyError(`${path} is not an Ed25519 key`)
  const publicKey = publicKeyToMoltKey(keyObjectToRawPublicKey(privateKey))
  if (publicKey !== file.public_key) throw new OrgKeyError(`${path}: the private key does not match public_key`)
  return { name: file.org, publicKey, privateKey }
}

async function deriveKey (passphrase: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return scrypt(passphrase.normalize('NFC'), salt, 32, { N, r, p, maxmem: c.SCRYPT_MAXMEM })
}

async function seal (plain: Buffer, passphrase: string): Promise<Encrypted> {
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const key = await deriveKey(passphrase, salt, c.SCRYPT_N, c.SCRYPT_R, c.SCRYPT_P)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const data = Buffer.concat([cipher.update(plain), cipher.final()])
  return {
    kdf: 'scrypt',
    N: c.SCRYPT_N,
    r: c.SCRYPT_R,
    p: c.SCRYPT_P,
    salt: salt.toString('base64'),
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64')
  }
}

async function unseal (box: Encrypted, passphrase: string, path: string): Promise<Buffer> {
  // bound the work a crafted file can ask for: only our own parameters are accepted
  if (box.kdf !== 'scrypt' || box.cipher !== 'aes-256-gcm' || box.N !== c.SCRYPT_N || box.r !== c.SCRYPT_R || box.p !== c.SCRYPT_P) {
    throw new OrgKeyError(`${path}: unsupported encryption parameters`)
  }
  try {
    const key = await deriveKey(passphrase, Buffer.from(box.salt, 'base64'), box.N, box.r, box.p)
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'))
    decipher.setAuthTag(Buffer.from(box.tag, 'base64'))
    return Buffer.concat([decipher.update(Buffer.from(box.data, 'base64')), decipher.final()])
  } catch {
    throw new OrgKeyError(`${path}: wrong passphrase (or the file was altered)`)
  }
}
