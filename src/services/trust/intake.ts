import type { Logger } from '@libp2p/interface'
import type { VerifiedAttestation } from './attestation.js'
import { RevocationMismatchError } from './errors.js'
import type { StoredAttestation, TrustStore } from './store.js'

/**
 * The one way a verified record enters the store, whichever route it came by
 * (gossip, sync, the API): the checks that need the store, the write, and the
 * counters behind `stats()`
 */
export class RecordIntake {
  /** Records accepted from gossip, sync and the API since start */
  accepted = 0
  /** Records refused, by reason (error name) */
  readonly rejected: Record<string, number> = {}

  constructor (private readonly store: TrustStore, private readonly log: Logger) {}

  /**
   * Checks beyond the record itself: a revocation must come from the revoked record's issuer
   *
   * @throws {RevocationMismatchError}
   */
  check (verified: VerifiedAttestation): VerifiedAttestation {
    const { record, issuer } = verified
    if (record.type === 'revocation') {
      const original = this.store.get(record.claims.credential_id as string)
      if (original !== undefined && original.issuer !== issuer) {
        throw new RevocationMismatchError(`${issuer} cannot revoke ${original.record.id} of ${original.issuer}`)
      }
    }
    return verified
  }

  /** Store the records not held yet; resolves with the new ones once written */
  async keep (items: VerifiedAttestation[]): Promise<StoredAttestation[]> {
    if (items.length === 0) return []
    const added = await this.store.add(items)
    this.accepted += added.length
    return added
  }

  /** Count a refused record under its error's name */
  reject (err: Error, what = 'an attestation'): void {
    const name = err.name ?? 'Error'
    this.rejected[name] = (this.rejected[name] ?? 0) + 1
    this.log('refused %s - %e', what, err)
  }
}
