import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { didFromPublicKey } from './did.js'

export { loadOrCreateKey, loadKey, KEY_FILE_MODE } from './key-file.js'
export { didFromPublicKey, publicKeyFromDid } from './did.js'

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Everything derived from one Ed25519 key: the agent's addresses in each namespace */
export interface Identity {
  privateKey: Ed25519PrivateKey
  peerId: PeerId
  /** MoltSpeak `from.key`: `ed25519:<base64 public key>` */
  moltKey: string
  /** `did:molt:key:z…` */
  did: string
  /** node:crypto forms, for fast signing/verifying (noble is ~15× slower) */
  signingKey: KeyObject
  verifyingKey: KeyObject
}

export function identityFromKey (privateKey: Ed25519PrivateKey): Identity {
  const publicRaw = privateKey.publicKey.raw
  // libp2p's raw Ed25519 private key is seed ‖ public key
  const seed = privateKey.raw.subarray(0, 32)
  return {
    privateKey,
    peerId: peerIdFromPrivateKey(privateKey),
    moltKey: 'ed25519:' + Buffer.from(publicRaw).toString('base64'),
    did: didFromPublicKey(publicRaw),
    signingKey: createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' }),
    verifyingKey: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicRaw]), format: 'der', type: 'spki' })
  }
}
