import { RotationConflictError } from './errors.js'
import { peerIdOfMoltKey, rotationId, type KeyRotation } from './statement.js'
import * as c from './constants.js'

/** One accepted rotation, with its PeerIds worked out once */
export interface RotationLink {
  id: string
  rotation: KeyRotation
  /** PeerId of `old_key` */
  from: string
  /** PeerId of `new_key` */
  to: string
  /** Unix ms from which `from` is refused: `issued + ROTATION_GRACE_PERIOD` */
  refusedFrom: number
}

/**
 * The rotations a node knows, as chains of PeerIds (old → new → newer). The
 * rules make every identity one line, the same at every node whatever order
 * the statements arrive in (protocols/identity.md, "Key rotation"):
 * a key rotates away once; a key is brought in once; a key that was retired
 * never comes back (no cycle); `seq` counts up by one along a chain.
 * Statements are verified before they get here (verifyRotation).
 */
export class RotationChain {
  private readonly byFrom = new Map<string, RotationLink>()
  private readonly byTo = new Map<string, RotationLink>()
  private readonly byId = new Map<string, RotationLink>()
  /** Bumped on every change: caches of things derived from the chains key on it */
  version = 0

  constructor (private readonly gracePeriod = c.ROTATION_GRACE_PERIOD) {}

  get size (): number {
    return this.byId.size
  }

  has (id: string): boolean {
    return this.byId.has(id)
  }

  get (id: string): RotationLink | undefined {
    return this.byId.get(id)
  }

  links (): IterableIterator<RotationLink> {
    return this.byId.values()
  }

  /**
   * Whether `rotation` fits the chains known (no change); its link when it does
   *
   * @throws {RotationConflictError}
   */
  check (rotation: KeyRotation, now: number): RotationLink {
    const id = rotationId(rotation)
    const from = peerIdOfMoltKey(rotation.old_key)
    const to = peerIdOfMoltKey(rotation.new_key)
    const link: RotationLink = { id, rotation, from, to, refusedFrom: rotation.issued + this.gracePeriod }
    if (this.byId.has(id)) return link
    if (rotation.issued > now + c.MAX_ROTATION_CLOCK_SKEW) throw new RotationConflictError(`the rotation of ${from} is issued ${new Date(rotation.issued).toISOString()}, in the future`)
    const earlier = this.byFrom.get(from)
    if (earlier !== undefined) throw new RotationConflictError(`${from} rotated to ${earlier.to} already (seq ${earlier.rotation.seq}): a key rotates away once`)
    const taken = this.byTo.get(to)
    if (taken !== undefined) throw new RotationConflictError(`${to} took over from ${taken.from} already: a key is brought in once`)
    if (this.current(to) === from) throw new RotationConflictError(`${to} was retired on the way to ${from}: a retired key never comes back`)
    const previous = this.byTo.get(from)
    if (previous !== undefined && rotation.seq !== previous.rotation.seq + 1) {
      throw new RotationConflictError(`the rotation of ${from} has seq ${rotation.seq}; it follows seq ${previous.rotation.seq}, so it must be ${previous.rotation.seq + 1}`)
    }
    if (previous !== undefined && rotation.issued < previous.rotation.issued) throw new RotationConflictError(`the rotation of ${from} is issued before the rotation that brought ${from} in`)
    const next = this.byFrom.get(to)
    if (next !== undefined && next.rotation.seq !== rotation.seq + 1) {
      throw new RotationConflictError(`the rotation to ${to} has seq ${rotation.seq}, but ${to} rotated on with seq ${next.rotation.seq}`)
    }
    return link
  }

  /**
   * Add a verified statement; false when it was known already (a replay is a no-op)
   *
   * @throws {RotationConflictError}
   */
  add (rotation: KeyRotation, now: number): boolean {
    const link = this.check(rotation, now)
    if (this.byId.has(link.id)) return false
    this.byId.set(link.id, link)
    this.byFrom.set(link.from, link)
    this.byTo.set(link.to, link)
    this.version++
    return true
  }

  /** The PeerId `peer`'s identity has now: `peer` itself unless it rotated (followed to the newest key) */
  current (peer: string): string {
    let id = peer
    // the rules admit no cycle; the bound is a second guard
    for (let steps = 0; steps <= this.byId.size; steps++) {
      const link = this.byFrom.get(id)
      if (link === undefined) return id
      id = link.to
    }
    return id
  }

  /** The rotation that retired `peer`, if any */
  retiredBy (peer: string): RotationLink | undefined {
    return this.byFrom.get(peer)
  }

  /** The rotation that brought `peer` in, if any */
  introducedBy (peer: string): RotationLink | undefined {
    return this.byTo.get(peer)
  }

  /** Whether `peer` is an old key past its grace period at `now`: to be refused */
  refused (peer: string, now: number): boolean {
    const link = this.byFrom.get(peer)
    return link !== undefined && now >= link.refusedFrom
  }

  /** Every earlier PeerId of the identity `peer` belongs to, oldest first */
  history (peer: string): string[] {
    const out: string[] = []
    let id = peer
    for (let steps = 0; steps <= this.byId.size; steps++) {
      const link = this.byTo.get(id)
      if (link === undefined) break
      out.unshift(link.from)
      id = link.from
    }
    return out
  }
}
