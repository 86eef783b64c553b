import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'

/** multicodec varint prefix of an ed25519-pub key */
const ED25519_PUB_PREFIX = Uint8Array.from([0xed, 0x01])
const DID_PREFIX = 'did:molt:key:z'

/** `did:molt:key:z…` — base58btc(0xed01 ‖ public key), the did:key encoding */
export function didFromPublicKey (raw: Uint8Array): string {
  const bytes = new Uint8Array(ED25519_PUB_PREFIX.length + raw.length)
  bytes.set(ED25519_PUB_PREFIX, 0)
  bytes.set(raw, ED25519_PUB_PREFIX.length)
  return DID_PREFIX + uint8ArrayToString(bytes, 'base58btc')
}

/** The raw 32-byte Ed25519 public key inside a `did:molt:key:z…` */
export function publicKeyFromDid (did: string): Uint8Array {
  if (!did.startsWith(DID_PREFIX)) {
    throw new TypeError(`Not a did:molt:key identifier: ${did}`)
  }
  const bytes = uint8ArrayFromString(did.slice(DID_PREFIX.length), 'base58btc')
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) {
    throw new TypeError(`did:molt:key does not hold an Ed25519 public key: ${did}`)
  }
  return bytes.subarray(2)
}
