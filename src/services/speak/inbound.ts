import type { Connection, Logger, PeerId, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, FrameError, encodeFrame, FRAME_ACK, FRAME_MESSAGE, FRAME_REJECT } from './frames.js'
import { checkMessageDepth, MoltSpeakError, validateMessage, verifyMessageSource, createMessage, errorPayload, isMoltSpeakName } from '../../moltspeak/index.js'
import type { AgentRef, MoltMessage } from '../../moltspeak/index.js'
import type { ReplayWindow } from '../../moltspeak/replay-window.js'
import { connectionRoute, type Route } from '../../routing/route.js'
import { MAX_MESSAGE_LIFETIME } from '../../moltspeak/constants.js'

/** How a message reached this node */
export type { Route } from '../../routing/route.js'

/** One accepted message, handed to the node before it is acknowledged */
export interface InboundMessage {
  message: MoltMessage
  /** The message exactly as received (decoded once, stored verbatim) */
  json: string
  /** The Noise-authenticated sender */
  peer: PeerId
  route: Route
}

export interface InboundPolicy {
  maxFrameBytes: number
  maxSkippableFrameBytes: number
  maxMessageBytes: number
  readHighWaterBytes: number
  requireSignatures: boolean
  replayWindowMs: number
  maxClockSkewMs: number
  replay: ReplayWindow
  localAgent: () => AgentRef
  /** Persist/dispatch a batch; the batch is acknowledged only after this resolves */
  receive: (batch: InboundMessage[]) => Promise<void>
  /** Called for every refused message (for logs and metrics) */
  onRefused?: (peer: PeerId, error: MoltSpeakError) => void
  onDuplicate?: (peer: PeerId, id: string) => void
  /** Last check of a valid message (e.g. the trust inbox policy): an error refuses it */
  authorize?: (peer: PeerId, message: MoltMessage) => MoltSpeakError | undefined
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/** Batches handed to `receive` but not yet acknowledged, per stream, before reading waits */
const MAX_BATCHES_STORING = 4

/**
 * Frames checked per batch. Without a cap, 4 MiB of buffered 7-byte invalid
 * frames became one synchronous batch of ~600,000 REJECTs (seconds of blocked
 * event loop and ~250 MB of replies at once); capped, a batch's replies are at
 * most ~0.5 MB and other streams and peers run between batches.
 */
const MAX_BATCH_FRAMES = 1024

/**
 * Serve one inbound speak stream: decode frames, check each message, hand the
 * accepted ones to the node in batches, then send one cumulative ack per batch.
 * Bad messages get a REJECT carrying a MoltSpeak `error`; unparseable framing
 * gets a final REJECT(seq 0) and the stream is closed. Other streams are unaffected.
 */
export interface InboundStreamHandle {
  /** Resolves when every batch read so far has been acknowledged (or refused) */
  drained(): Promise<void>
}

export function serveInboundStream (stream: Stream, connection: Connection, policy: InboundPolicy, log: Logger): InboundStreamHandle {
  const peer = connection.remotePeer
  const peerKey = peer.publicKey != null ? 'ed25519:' + Buffer.from(peer.publicKey.raw).toString('base64') : undefined
  const route = connectionRoute(connection)
  const frames = new FrameDecoder(policy.maxFrameBytes, policy.maxSkippableFrameBytes)
  let lastSeq = 0
  let acks: Promise<void> = Promise.resolve()
  let storing = 0
  let processing = false
  let ended = false
  let finished = false
  /**
   * Set when our replies (acks, rejects) are not leaving because the peer
   * does not read them: yamux would buffer them without limit, so reading
   * stops until they drain (a peer that never reads is then cut off by the
   * stream's inactivity timeout)
   */
  let writeBlocked = false

  const write = (chunks: Uint8Array[]): void => {
    if (chunks.length === 0 || stream.writeStatus !== 'writable') return
    try {
      if (!stream.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))) writeBlocked = true
    } catch (err: any) {
      log('could not write to %p - %e', peer, err)
    }
  }

  const fail = (error: MoltSpeakError): void => {
    if (finished) return
    finished = true
    policy.onRefused?.(peer, error)
    log('closing speak stream from %p: %s', peer, error.message)
    write([encodeFrame(FRAME_REJECT, 0, errorReply(policy.localAgent(), undefined, error))])
    stream.close().catch(() => { stream.abort(error) })
  }

  const process = async (): Promise<void> => {
    if (processing) return
    processing = true
    try {
      while (!finished) {
        if (writeBlocked) {
          if (stream.readStatus === 'readable') stream.pause()
          await stream.onDrain()
          writeBlocked = false
          if (stream.readStatus === 'paused' && frames.bufferedBytes < policy.readHighWaterBytes) stream.resume()
          continue
        }
        const out: Uint8Array[] = []
        const batch: InboundMessage[] = []
        const batchSeqs: number[] = []
        let frame
        let handled = 0
        while (handled < MAX_BATCH_FRAMES && (frame = frames.next()) != null) {
          if (frame.type !== FRAME_MESSAGE) throw new FrameError(`unexpected frame type ${frame.type}`, 'malformed')
          if (frame.seq <= lastSeq) throw new FrameError(`sequence ${frame.seq} does not increase`, 'malformed')
          lastSeq = frame.seq
          handled++
          const checked = frame.oversizedBytes != null
            ? new Refusal(new MoltSpeakError('E_INVALID_PARAM', `message of ${frame.oversizedBytes} bytes exceeds the ${policy.maxMessageBytes} byte limit`), undefined)
            : check(frame.body, peer, peerKey, policy)
          if (checked instanceof Refusal) {
            policy.onRefused?.(peer, checked.error)
            out.push(encodeFrame(FRAME_REJECT, frame.seq, errorReply(policy.localAgent(), checked.refused, checked.error)))
          } else if (checked !== DUPLICATE) {
            batch.push({ message: checked.message, json: checked.json, peer, route })
            batchSeqs.push(frame.seq)
          }
        }
        if (handled === 0) break
        // storing batch k+1 overlaps with storing batch k; acks still leave in order
        const stored = batch.length > 0 ? policy.receive(batch) : Promise.resolve()
        const ackSeq = lastSeq
        const acked = acks.then(async () => {
          try {
            await stored
          } catch (err: any) {
            // not stored: refuse (never ack) so the sender knows to retry
            log.error('could not accept %d messages from %p - %e', batch.length, peer, err)
            for (let i = 0; i < batch.length; i++) {
              const error = new MoltSpeakError('E_INTERNAL', `receiver could not store the message: ${err.message}`)
              out.push(encodeFrame(FRAME_REJECT, batchSeqs[i], errorReply(policy.localAgent(), batch[i].message, error)))
            }
          }
          out.push(encodeFrame(FRAME_ACK, ackSeq))
          write(out)
        })
        acks = acked
        if (++storing >= MAX_BATCHES_STORING) await acked
        acked.finally(() => { storing-- }).catch(() => {})
        if (handled === MAX_BATCH_FRAMES) await new Promise(resolve => setImmediate(resolve)) // let other streams run
        if (stream.readStatus === 'paused' && !writeBlocked && frames.bufferedBytes < policy.readHighWaterBytes) stream.resume()
      }
      if (ended && !finished) {
        frames.end()
        await acks
        finished = true
        await stream.close().catch(() => {})
      }
    } catch (err: any) {
      fail(err instanceof FrameError
        ? new MoltSpeakError(err.reason === 'oversized' ? 'E_INVALID_PARAM' : 'E_PARSE', err.message)
        : new MoltSpeakError('E_INTERNAL', err.message))
    } finally {
      processing = false
    }
  }

  const kick = (): void => {
    process().catch((err) => { log.error('speak stream from %p failed - %e', peer, err) })
  }

  stream.addEventListener('message', (evt: { data: Uint8Array | Uint8ArrayList }) => {
    if (finished) return
    frames.push(evt.data)
    // backpressure: stop reading (and so stop granting yamux window) while behind
    if (frames.bufferedBytes > policy.readHighWaterBytes && stream.readStatus === 'readable') stream.pause()
    kick()
  })
  stream.addEventListener('close', () => { finished = true })
  const handle: InboundStreamHandle = { drained: async () => acks }
  stream.addEventListener('remoteCloseWrite', () => {
    ended = true
    kick()
  })
  return handle
}

const DUPLICATE = Symbol('duplicate')

/** Every per-message rule of protocols/speak.md, cheapest first */
function check (body: Uint8Array, peer: PeerId, peerKey: string | undefined, policy: InboundPolicy): { message: MoltMessage, json: string } | Refusal | typeof DUPLICATE {
  if (body.byteLength > policy.maxMessageBytes) {
    return new Refusal(new MoltSpeakError('E_INVALID_PARAM', `message of ${body.byteLength} bytes exceeds the ${policy.maxMessageBytes} byte limit`), undefined)
  }
  try {
    checkMessageDepth(body)
  } catch (err: any) {
    return new Refusal(err, undefined)
  }
  let value: any
  let json: string
  try {
    json = decoder.decode(body)
    value = JSON.parse(json)
  } catch (err: any) {
    return new Refusal(new MoltSpeakError('E_PARSE', `message is not valid UTF-8 JSON: ${err.message}`), undefined)
  }
  let message: MoltMessage
  try {
    message = validateMessage(value, { depthChecked: true }) // checkMessageDepth(body) above
  } catch (err: any) {
    if (err instanceof MoltSpeakError) {
      return withContext(err, value)
    }
    return withContext(new MoltSpeakError('E_SCHEMA', err.message), value)
  }
  if (message.from.key != null && message.from.key !== peerKey) {
    return withContext(new MoltSpeakError('E_AUTH_FAILED', 'from.key does not match the authenticated peer', { field: 'from.key' }), message)
  }
  // a refusal by sender (the trust inbox policy, cached per sender) before the costly signature check
  const denied = policy.authorize?.(peer, message)
  if (denied !== undefined) return withContext(denied, message)
  if (message.sig != null) {
    // over the source text: numbers as the signer wrote them (`1.0`, big integers); a repeated key
    // or a number JavaScript cannot hold exactly is refused by name (source.ts)
    let valid: boolean
    try {
      valid = verifyMessageSource(message, json)
    } catch (err: any) {
      return withContext(err instanceof MoltSpeakError ? err : new MoltSpeakError('E_SIGNATURE', err.message), message)
    }
    if (!valid) {
      return withContext(new MoltSpeakError('E_SIGNATURE', 'signature does not verify against from.key', { field: 'sig' }), message)
    }
  } else if (policy.requireSignatures) {
    return withContext(new MoltSpeakError('E_SIGNATURE', 'this node requires signed messages (sig with from.key)', { field: 'sig' }), message)
  }
  const now = Date.now()
  if (message.exp != null && message.exp < now) {
    return withContext(new MoltSpeakError('E_TIMEOUT', `message expired at ${new Date(message.exp).toISOString()}`, { field: 'exp' }), message)
  }
  if (message.ts > now + policy.maxClockSkewMs) {
    return withContext(new MoltSpeakError('E_INVALID_PARAM', `ts is more than ${policy.maxClockSkewMs} ms in the future`, { field: 'ts' }), message)
  }
  // a message that says how long it is valid (`exp`, e.g. one retried from an outbox for days)
  // is accepted until then and its id remembered as long; otherwise the replay window bounds it
  if (message.exp == null && message.ts < now - policy.replayWindowMs) {
    return withContext(new MoltSpeakError('E_INVALID_PARAM', `ts is older than the ${policy.replayWindowMs} ms replay window and there is no exp`, { field: 'ts' }), message)
  }
  if (message.exp != null && message.exp - message.ts > MAX_MESSAGE_LIFETIME) {
    return withContext(new MoltSpeakError('E_INVALID_PARAM', `exp is more than ${MAX_MESSAGE_LIFETIME / 86_400_000} days after ts`, { field: 'exp' }), message)
  }
  if (policy.replay.checkAndRemember(`${peer.toString()}/${message.id}`, message.ts, now, message.exp)) {
    policy.onDuplicate?.(peer, message.id)
    return DUPLICATE
  }
  return { message, json }
}

/** A refused message and what could be read of it (to address the error reply) */
class Refusal {
  constructor (readonly error: MoltSpeakError, readonly refused: unknown) {}
}

function withContext (error: MoltSpeakError, refused: unknown): Refusal {
  return new Refusal(error, refused)
}

/** The MoltSpeak `error` reply for a refused message (its `re` is the refused id when known) */
export function errorReply (from: AgentRef, refused: unknown, error: MoltSpeakError): Uint8Array {
  const original = (typeof refused === 'object' && refused !== null ? refused : {}) as Partial<MoltMessage>
  const to = isAgentRef(original.from) && isMoltSpeakName(original.from.agent) && isMoltSpeakName(original.from.org)
    ? { agent: original.from.agent, org: original.from.org }
    : { agent: 'unknown', org: 'unknown' }
  const reply = createMessage({
    op: 'error',
    from,
    to,
    cls: 'int',
    re: typeof original.id === 'string' ? original.id : undefined,
    p: errorPayload(error.code, error.message, error.field != null ? { field: error.field } : undefined) as unknown as Record<string, unknown>
  })
  return new TextEncoder().encode(JSON.stringify(reply))
}

function isAgentRef (value: unknown): value is AgentRef {
  return typeof value === 'object' && value !== null && typeof (value as AgentRef).agent === 'string' && typeof (value as AgentRef).org === 'string'
}
