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
  /**
   * Persist/dispatch a batch; the batch is acknowledged only after this
   * resolves. `deferrable`: nobody waits on this ACK (a batch of 1.1.0
   * REQUESTs, or REPLYs), so the store may wait to share a write with later batches
   */
  receive: (batch: InboundMessage[], options?: { deferrable?: boolean }) => Promise<void>
  /** Called for every refused message (for logs and metrics) */
  onRefused?: (peer: PeerId, error: MoltSpeakError) => void
}
