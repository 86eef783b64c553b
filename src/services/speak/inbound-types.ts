import type { PeerId } from '@libp2p/interface'
import type { CheckPolicy } from './inbound-checks.js'
import type { AgentRef, MoltMessage, MoltSpeakError } from '../../moltspeak/index.js'
import type { Route } from '../../routing/route.js'

/** One accepted message, handed to the node before it is acknowledged */
export interface InboundMessage {
  message: MoltMessage
  /** The message exactly as received (decoded once, stored verbatim) */
  json: string
  /** The Noise-authenticated sender */
  peer: PeerId
  route: Route
}

/**
 * What an inbound stream and a REPLY on one of our own streams both check and
 * hand on (apart from their own framing limits)
 */
export interface MessagePolicy extends CheckPolicy {
  localAgent: () => AgentRef
  /** Persist/dispatch a batch; the batch is acknowledged only after this resolves */
  receive: (batch: InboundMessage[]) => Promise<void>
  /** Called for every refused message (for logs and metrics) */
  onRefused?: (peer: PeerId, error: MoltSpeakError) => void
}
