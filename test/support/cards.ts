import type { Identity } from '../../src/identity/index.js'
import type { UnsignedCard } from '../../src/services/card/index.js'

const hour = 60 * 60 * 1000

/** A valid unsigned card for `who`; overrides win, and an override of `undefined` removes the field */
export function cardFields (who: Identity, overrides: Partial<UnsignedCard> = {}): UnsignedCard {
  const now = Date.now()
  const card: Record<string, unknown> = {
    v: 1,
    peer_id: who.peerId.toString(),
    key: who.moltKey,
    did: who.did,
    name: 'alice',
    org: 'acme',
    description: 'translates things',
    capabilities: [{ name: 'translate.text', description: 'any language pair' }, { name: 'summarise' }],
    protocol_versions: ['0.1'],
    supported_cls: ['pub', 'int', 'conf'],
    addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${who.peerId.toString()}`],
    issued: now,
    expires: now + 24 * hour,
    ...overrides
  }
  for (const [field, value] of Object.entries(card)) if (value === undefined) delete card[field]
  return card as unknown as UnsignedCard
}
