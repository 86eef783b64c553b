import { createHash, sign, verify, type KeyObject } from 'node:crypto'
import type { DepositItem } from './store.js'

const DOMAIN = 'molt/mailbox/deposit/1\n'

/**
 * What a depositor signs (protocols/mailbox.md "Deposit signature"): SHA-256
 * over the domain string, sender, recipient and every item's id, expiry and
 * SHA-256 of its box. One signature covers a whole deposit frame: a relay pays
 * one Ed25519 verify (~140 µs) per batch, not per message.
 */
export function depositDigest (from: string, to: string, items: ReadonlyArray<Pick<DepositItem, 'id' | 'exp' | 'box'>>): Buffer {
  const hash = createHash('sha256').update(DOMAIN).update(from).update('\n').update(to).update('\n')
  for (const item of items) {
    hash.update(item.id).update('\n').update(String(item.exp)).update('\n')
      .update(createHash('sha256').update(item.box).digest()).update('\n')
  }
  return hash.digest()
}

export function signDeposit (key: KeyObject, from: string, to: string, items: ReadonlyArray<Pick<DepositItem, 'id' | 'exp' | 'box'>>): string {
  return sign(null, depositDigest(from, to, items), key).toString('base64')
}

export function verifyDeposit (key: KeyObject, signature: string, from: string, to: string, items: ReadonlyArray<Pick<DepositItem, 'id' | 'exp' | 'box'>>): boolean {
  try {
    return verify(null, depositDigest(from, to, items), key, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}
