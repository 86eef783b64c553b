import { createHash } from 'node:crypto'
import { gossipsub, type GossipsubOpts, type Message } from '@libp2p/gossipsub'
import * as c from './constants.js'

/** Peer scoring on a topic of rare signed records (attestations, organisation revocations) */
const RARE_RECORD_TOPIC = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 100,
  firstMessageDeliveriesWeight: 0.5,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 20,
  // records are rare: a delivery quota would punish honest quiet peers
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 10,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 60_000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: c.INVALID_MESSAGE_WEIGHT,
  invalidMessageDeliveriesDecay: 0.99
}

/** gossipsub configured for the trust topics (attestations, organisation revocations): content ids, relayed connections, scoring that penalises invalid records */
export function trustPubsub (init: Partial<GossipsubOpts> = {}): ReturnType<typeof gossipsub> {
  return gossipsub({
    // agents behind NAT reach the mesh through circuit relays
    runOnLimitedConnection: true,
    // a quiet LAN must not make attest() throw: sync catches up later
    allowPublishToZeroTopicPeers: true,
    // a record is its own id: the same record from two routes is one message
    msgIdFn: (msg: Message) => createHash('sha256').update(msg.data).digest().subarray(0, 20),
    ...init,
    scoreParams: {
      IPColocationFactorWhitelist: new Set(c.COLOCATION_WHITELIST),
      ...init.scoreParams,
      topics: {
        [c.TOPIC]: RARE_RECORD_TOPIC,
        // revocations are rarer still, and an invalid one costs its sender the same
        [c.ORG_REVOCATION_TOPIC]: RARE_RECORD_TOPIC,
        [c.KEY_ROTATION_TOPIC]: RARE_RECORD_TOPIC,
        ...init.scoreParams?.topics
      }
    }
  })
}
