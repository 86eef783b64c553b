import { ConnectionClosedError, serviceCapabilities } from '@libp2p/interface'
import type { ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { OutboundSession } from './outbound-session.js'
import type { Priority } from './priority-queue.js'
import { InboundSession, type InboundMessage } from './inbound.js'
import type { ReplyReceiverInit } from './replies.js'
import { MessageTooLargeError, SpeakStoppingError } from './errors.js'
import { SpeakCounters } from './counters.js'
import { connectionRoute } from '../../routing/route.js'
import { ReplayWindow } from '../../moltspeak/replay-window.js'
import { MAX_MESSAGE_BYTES } from '../../moltspeak/constants.js'
import type { AgentRef, MoltMessage, MoltSpeakError } from '../../moltspeak/index.js'
import * as c from './constants.js'

export interface SpeakInit {
  /**
   * Speak only this protocol id (tests pin '/molt/speak/1.0.0' to play a peer
   * without replies on the request's stream). @default '/molt/speak/1.1.0', then '/molt/speak/1.0.0'
   */
  protocol?: string
  /** How long an ACK nobody waits on may be held to ride with the next frame, in ms. @default 5 */
  ackDelay?: number
  /** Largest accepted message in bytes. @default 1048576 (MoltSpeak's limit) */
  maxMessageBytes?: number
  /** @default 30000 */
  ackTimeout?: number
  /** @default 4096 */
  maxInFlight?: number
  /** @default 16 MiB */
  maxInFlightBytes?: number
  /** Low-priority messages in flight on a peer's low-band stream (bounds the low work the receiver has in hand). @default 32 */
  maxLowInFlight?: number
  /** @default 4 MiB */
  readHighWaterBytes?: number
  /** Refuse unsigned messages with E_SIGNATURE. @default false */
  requireSignatures?: boolean
  /** @default 24 h */
  replayWindow?: number
  /** @default 100000 */
  replayCacheSize?: number
  /**
   * The window of ids already received, when the node shares it with other
   * paths (mailbox) and persists it (exactly-once). @default a window of its own
   */
  replay?: ReplayWindow
  /** @default 5 min */
  maxClockSkew?: number
  /** @default 6 */
  maxInboundStreams?: number
  /** @default 6 */
  maxOutboundStreams?: number
  /** The AgentRef this node puts in `from` of error replies */
  localAgent: () => AgentRef
  /** Accept a batch of checked messages; they are acknowledged once this resolves (`deferrable`: nobody waits on that ACK) */
  receive: (batch: InboundMessage[], options?: { deferrable?: boolean }) => Promise<void>
  onRefused?: (peer: PeerId, error: MoltSpeakError) => void
  onDuplicate?: (peer: PeerId, id: string) => void
  /** Refuse a valid message with the returned error (checked last, before the replay window) */
  authorize?: (peer: PeerId, message: MoltMessage) => MoltSpeakError | undefined
}

export interface SpeakComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
}

export interface SpeakStats {
  sessions: number
  inFlight: number
  replayCacheSize: number
  /** Stream writes and frames written since start (counters.ts) */
  writes: number
  ackOnlyWrites: number
  frames: Record<string, number>
}

export interface SpeakSendOptions {
  signal?: AbortSignal
  priority?: Priority
  /** The sender waits for a reply (node.request): on 1.1.0 it travels as a REQUEST */
  request?: boolean
  /** The id of the request this message answers: on 1.1.0 it goes back on that request's stream when still open */
  re?: string
}

/** /molt/speak/1.0.0: pipelined, acknowledged MoltSpeak messages over one stream per peer and priority band */
export interface Speak extends Startable {
  readonly protocol: string
  /** Send one encoded MoltSpeak message; resolves when `peer` acknowledged receipt */
  send(peer: PeerId, body: Uint8Array, options?: SpeakSendOptions): Promise<void>
  stats(): SpeakStats
}

class DefaultSpeak implements Speak {
  readonly protocol: string
  /** Offered in this order when opening a stream, all handled */
  private readonly protocols: string[]
  private readonly counters = new SpeakCounters()
  /** `peer/id` of REQUESTs received on 1.1.0 streams → the stream their reply goes back on */
  private readonly replyRoutes = new Map<string, InboundSession>()
  private readonly log: Logger
  private readonly sessions = new Map<string, OutboundSession>()
  private readonly opening = new Map<string, Promise<OutboundSession>>()
  private readonly replay: ReplayWindow
  private readonly inbound = new Set<InboundSession>()
  private readonly maxFrameBytes: number
  private readonly maxMessageBytes: number
  private started = false

  readonly [Symbol.toStringTag] = 'molt/speak'
  readonly [serviceCapabilities] = ['@molt/speak']

  constructor (private readonly components: SpeakComponents, private readonly init: SpeakInit) {
    this.log = components.logger.forComponent('molt:speak')
    this.protocol = init.protocol ?? c.PROTOCOL
    this.protocols = init.protocol !== undefined ? [init.protocol] : [c.PROTOCOL_REPLIES, c.PROTOCOL]
    this.maxMessageBytes = init.maxMessageBytes ?? MAX_MESSAGE_BYTES
    this.maxFrameBytes = this.maxMessageBytes + c.FRAME_OVERHEAD
    this.replay = init.replay ?? new ReplayWindow(init.replayWindow ?? c.REPLAY_WINDOW, init.replayCacheSize ?? c.REPLAY_CACHE_SIZE)
  }

  async start (): Promise<void> {
    for (const protocol of this.protocols) {
      await this.components.registrar.handle(protocol, (stream, connection) => { this.onStream(stream, connection) }, {
        maxInboundStreams: this.init.maxInboundStreams ?? c.MAX_INBOUND_STREAMS,
        maxOutboundStreams: this.init.maxOutboundStreams ?? c.MAX_OUTBOUND_STREAMS,
        // agents behind NAT talk over circuit relays; our own relays set generous limits
        runOnLimitedConnection: true
      })
    }
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    for (const protocol of this.protocols) await this.components.registrar.unhandle(protocol)
    // let acks for messages already handed to the node leave before connections close
    const drained = Promise.allSettled([...this.inbound].map(async session => session.drained()))
    await Promise.race([drained, new Promise(resolve => setTimeout(resolve, c.STOP_DRAIN_TIMEOUT).unref())])
    this.inbound.clear()
    for (const session of this.sessions.values()) session.close()
    this.sessions.clear()
  }

  stats (): SpeakStats {
    let inFlight = 0
    for (const session of this.sessions.values()) inFlight += session.inFlight
    return { sessions: this.sessions.size, inFlight, replayCacheSize: this.replay.size, ...this.counters.snapshot() }
  }

  async send (peer: PeerId, body: Uint8Array, options: SpeakSendOptions = {}): Promise<void> {
    if (body.byteLength > this.maxMessageBytes) {
      throw new MessageTooLargeError(`message of ${body.byteLength} bytes exceeds the ${this.maxMessageBytes} byte limit`)
    }
    const band = options.priority ?? 'normal'
    if (options.re !== undefined && await this.sendReply(peer, options.re, band, body)) return
    for (let attempt = 0; ; attempt++) {
      const session = await this.session(peer, band, options.signal)
      try {
        await session.send(body, options.signal, band, options.request === true)
        return
      } catch (err: any) {
        // The stream died before the ack (a relay cut a limited connection, the
        // peer restarted, …). Re-sending on a new stream is safe: the receiver
        // de-duplicates by (sender, id), so the app never sees it twice.
        if (err.name !== 'SessionClosedError' || attempt >= c.SESSION_RETRIES || options.signal?.aborted === true) throw err
        this.log('session to %p closed before the ack (%s); re-sending on a new stream', peer, err.message)
      }
    }
  }

  /**
   * A reply back on its request's 1.1.0 stream: true once the requester
   * acknowledged it; false when that stream is gone (then it travels like any
   * message — safe, the requester de-duplicates by id)
   */
  private async sendReply (peer: PeerId, re: string, band: Priority, body: Uint8Array): Promise<boolean> {
    const key = `${peer.toString()}/${re}`
    const session = this.replyRoutes.get(key)
    if (session === undefined) return false
    this.replyRoutes.delete(key)
    // only when nothing we sent earlier in its band is still on the way on our own stream: a reply never overtakes it
    if ((this.sessions.get(sessionKey(peer, band))?.inFlight ?? 0) > 0) return false
    try {
      await session.sendReply(body)
      return true
    } catch (err: any) {
      if (err.name !== 'SessionClosedError') throw err
      this.log('stream of request %s from %p closed before its reply (%s); sending it on ours', re, peer, err.message)
      return false
    }
  }

  /**
   * The session of one band to `peer`: each band has its own stream (opened on
   * its first message), so the receiver stores and acknowledges a band's
   * messages without waiting for the batches of another (protocols/speak.md,
   * "Priority bands")
   */
  private async session (peer: PeerId, band: Priority, signal?: AbortSignal): Promise<OutboundSession> {
    const key = sessionKey(peer, band)
    const existing = this.sessions.get(key)
    if (existing?.isOpen === true) return existing
    let opening = this.opening.get(key)
    if (opening == null) {
      opening = this.open(peer, key, signal).finally(() => { this.opening.delete(key) })
      this.opening.set(key, opening)
    }
    try {
      return await opening
    } catch (err: any) {
      // the peer is reachable (the normal band's stream is open) but this band
      // got no stream (a stream limit): it shares the normal session, where
      // waiting sends are served by weighted round-robin and low in flight is
      // capped as on its own stream
      const shared = this.sessions.get(sessionKey(peer, 'normal'))
      if (band === 'normal' || signal?.aborted === true || shared?.isOpen !== true) throw err
      this.log('no stream of its own for the %s band to %p (%s); sharing the normal one', band, peer, err.message)
      return shared
    }
  }

  private async open (peer: PeerId, key: string, signal?: AbortSignal): Promise<OutboundSession> {
    let stream: Stream
    let connection: Connection
    try {
      [stream, connection] = await this.newStream(peer, signal)
    } catch (err: any) {
      // libp2p closes a relayed connection once a direct one to the same peer
      // exists; a stream opened in that moment fails. One retry picks the survivor.
      if (signal?.aborted === true || err.name !== 'ConnectionClosedError') throw err
      this.log('connection to %p closed while opening a stream, retrying', peer)
      ;[stream, connection] = await this.newStream(peer, signal)
    }
    stream.inactivityTimeout = c.STREAM_IDLE_TIMEOUT
    const session = new OutboundSession(peer, stream, {
      ackTimeout: this.init.ackTimeout ?? c.ACK_TIMEOUT,
      maxInFlight: this.init.maxInFlight ?? c.MAX_IN_FLIGHT,
      maxInFlightBytes: this.init.maxInFlightBytes ?? c.MAX_IN_FLIGHT_BYTES,
      maxLowInFlight: this.init.maxLowInFlight ?? c.MAX_LOW_IN_FLIGHT,
      maxFrameBytes: this.maxFrameBytes
    }, this.log, (closed) => {
      if (this.sessions.get(key) === closed) this.sessions.delete(key)
    }, this.counters, stream.protocol === c.PROTOCOL_REPLIES
      ? { peer, peerKey: peerKeyOf(peer), route: connectionRoute(connection), policy: this.inboundPolicy(), ackDelay: this.init.ackDelay ?? c.ACK_DELAY, log: this.log }
      : undefined)
    this.sessions.set(key, session)
    return session
  }

  /**
   * A stream on an open connection when there is one — direct preferred, a
   * relayed ("limited") one otherwise: connectionManager.openStream ignores
   * limited connections and would dial again, which costs a reply over a relay
   * a whole new circuit. Dials only when nothing is open.
   */
  private async newStream (peer: PeerId, signal?: AbortSignal): Promise<[Stream, Connection]> {
    const open = this.components.connectionManager.getConnections(peer).filter(connection => connection.status === 'open')
    const connection = open.find(x => x.limits == null) ?? open[0] ?? await this.components.connectionManager.openConnection(peer, { signal })
    try {
      return [await connection.newStream(this.protocols, { signal, runOnLimitedConnection: true }), connection]
    } catch (err: any) {
      // the connection closed during the negotiation (libp2p rejects with the stream's
      // close event then, not an Error): a band's first stream can be opening at any time
      if (connection.status !== 'open' && signal?.aborted !== true) throw new ConnectionClosedError(`connection to ${peer} closed while opening a stream`)
      throw err
    }
  }

  private onStream (stream: Stream, connection: Connection): void {
    if (!this.started) {
      stream.abort(new SpeakStoppingError('speak service is stopping'))
      return
    }
    stream.inactivityTimeout = c.STREAM_IDLE_TIMEOUT
    const awaitingReply: string[] = []
    const session = new InboundSession(stream, connection, {
      ...this.inboundPolicy(),
      maxFrameBytes: this.maxFrameBytes,
      maxSkippableFrameBytes: Math.max(this.maxFrameBytes, c.MAX_SKIPPABLE_FRAME_BYTES),
      readHighWaterBytes: this.init.readHighWaterBytes ?? c.READ_HIGH_WATER_BYTES,
      counters: this.counters,
      replies: stream.protocol === c.PROTOCOL_REPLIES
        ? {
            ackDelay: this.init.ackDelay ?? c.ACK_DELAY,
            ackTimeout: this.init.ackTimeout ?? c.ACK_TIMEOUT,
            onRequest: (session, id) => {
              const key = `${connection.remotePeer.toString()}/${id}`
              this.replyRoutes.set(key, session)
              awaitingReply.push(key)
              // a route whose reply never came is forgotten after a window's worth (the reply then takes our stream)
              if (awaitingReply.length > (this.init.maxInFlight ?? c.MAX_IN_FLIGHT)) this.forgetRoute(awaitingReply.shift() as string, session)
            }
          }
        : undefined
    }, this.log)
    this.inbound.add(session)
    stream.addEventListener('close', () => {
      this.inbound.delete(session)
      for (const key of awaitingReply) this.forgetRoute(key, session)
    })
  }

  private forgetRoute (key: string, session: InboundSession): void {
    if (this.replyRoutes.get(key) === session) this.replyRoutes.delete(key)
  }

  /** What both the inbound streams and the REPLYs on our own streams check and hand on */
  private inboundPolicy (): ReplyReceiverInit['policy'] {
    return {
      maxMessageBytes: this.maxMessageBytes,
      requireSignatures: this.init.requireSignatures ?? false,
      replayWindowMs: this.init.replayWindow ?? c.REPLAY_WINDOW,
      maxClockSkewMs: this.init.maxClockSkew ?? c.MAX_CLOCK_SKEW,
      replay: this.replay,
      localAgent: this.init.localAgent,
      receive: this.init.receive,
      onRefused: this.init.onRefused,
      onDuplicate: this.init.onDuplicate,
      authorize: this.init.authorize
    }
  }
}

const sessionKey = (peer: PeerId, band: Priority): string => `${peer.toString()}/${band}`

function peerKeyOf (peer: PeerId): string | undefined {
  return peer.publicKey != null ? 'ed25519:' + Buffer.from(peer.publicKey.raw).toString('base64') : undefined
}

export function speak (init: SpeakInit): (components: SpeakComponents) => Speak {
  return (components) => new DefaultSpeak(components, init)
}
