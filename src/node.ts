import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { baseLibp2pOptions } from './base-libp2p.js'
import { identityFromKey, loadOrCreateKey, type Identity } from './identity/index.js'
import { resolveDataDir, loadConfig, saveConfig, parseConfig, acquireLock, type AgentProfile, type MoltConfig, type NodeLock } from './config/index.js'
import { openDatabase, type Database } from './storage/index.js'
import type { AgentRef, MoltMessage, Op } from './moltspeak/index.js'
import { NotStartedError } from './errors.js'
import { ADDRESS_DIAL_TIMEOUT, CONFIG_FILE, DB_DIR, IDENTITY_FILE } from './constants.js'
import type { RelayStatus } from './services/relay-client/index.js'
import type { AgentCard } from './services/card/index.js'
import { loadInstalledCertificate, loadRevocations } from './identity/org/index.js'
import { finishPendingRotation, rotateKeyFiles, KeyRotationError } from './identity/rotation/index.js'
import { AgentMetrics } from './metrics/index.js'
import type { OutboxEntry, DeadLetter } from './delivery/outbox.js'
import type { MailboxClient } from './services/mailbox/index.js'
import type { DiscoveredAgent, DiscoverOptions, KnownPeer } from './discovery/index.js'
import type { TrustService } from './services/trust/index.js'
import { createTaskService, type TaskService } from './services/tasks/index.js'
import { createTopicService, type TopicService } from './services/topics/index.js'
import { routeOver } from './routing/route.js'
import { MoltEvents } from './node/events.js'
import { moltServices, type MoltServiceMap } from './node/services.js'
import type {
  DeliveryReceipt, KeyRotationResult, MessageHandler, MessageInit, MoltNode, MoltNodeOptions, MoltServices, PeerInput, ReceivedMessage, RequestOptions,
  SendOptions, SendResult
} from './node/types.js'

export type * from './node/types.js'

/** MoltNode over the molt services of its libp2p node: identity and lifecycle here, everything else delegated */
class DefaultMoltNode implements MoltNode {
  libp2p!: Libp2p<MoltServices & MoltServiceMap>
  tasks!: TaskService & { start: () => void }
  topics!: TopicService & { stop: () => void }
  readonly peerId: PeerId
  readonly did: string
  readonly moltKey: string
  private stopped = false

  constructor (
    readonly identity: Identity,
    readonly config: MoltConfig,
    readonly dataDir: string,
    private readonly db: Database,
    private readonly lock: NodeLock | undefined,
    private readonly events: MoltEvents,
    readonly metrics: AgentMetrics,
    /** false when the key came from the `privateKey` option: then there is no key file to rotate */
    private readonly keyFromDataDir = true
  ) {
    this.peerId = identity.peerId
    this.did = identity.did
    this.moltKey = identity.moltKey
    events.owner = this
  }

  private get services (): MoltServices & MoltServiceMap { return this.libp2p.services }
  get trust (): TrustService { return this.services.trust }
  get mailbox (): Pick<MailboxClient, 'purge'> { return this.services.mailbox }
  get agent (): AgentRef { return this.services.moltMessages.agent }
  get profile (): AgentProfile { return this.services.moltMessages.profile }

  getMultiaddrs (): Multiaddr[] {
    return this.libp2p.getMultiaddrs()
  }

  addEventListener (type: string, listener: any, options?: boolean | { once?: boolean, signal?: AbortSignal, passive?: boolean }): void {
    this.events.addEventListener(type, listener, options)
  }

  removeEventListener (type: string, listener: any, options?: boolean | EventListenerOptions): void {
    this.events.removeEventListener(type, listener, options)
  }

  dispatchEvent (event: Event): boolean {
    return this.events.dispatchEvent(event)
  }

  async resolvePeer (peer: PeerInput, options: { signal?: AbortSignal } = {}): Promise<PeerId> {
    return this.services.moltPeers.resolvePeer(peer, options)
  }

  async send (peer: PeerInput, init: MessageInit, options: SendOptions = {}): Promise<SendResult> {
    return this.services.molt.send(peer, init, options)
  }

  async request (peer: PeerInput, init: MessageInit, options: RequestOptions = {}): Promise<MoltMessage> {
    return this.services.molt.request(peer, init, options)
  }

  async ping (peer: PeerInput, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<{ rtt: number, pong: MoltMessage }> {
    return this.services.molt.ping(peer, options)
  }

  outbox (options: { peer?: string } = {}): OutboxEntry[] {
    return this.services.molt.outbox(options)
  }

  deadLetters (): DeadLetter[] {
    return this.services.molt.deadLetters()
  }

  async retryOutbox (peer: PeerInput): Promise<void> {
    await this.services.molt.retryOutbox(peer)
  }

  async receipt (id: string, options: { signal?: AbortSignal, timeout?: number } = {}): Promise<DeliveryReceipt> {
    return this.services.moltReceipts.wait(id, options)
  }

  handle (op: Op, handler: MessageHandler): void {
    this.services.moltHandlers.handle(op, handler)
  }

  unhandle (op: Op): void {
    this.services.moltHandlers.unhandle(op)
  }

  async inbox (options: { after?: number, limit?: number } = {}): Promise<ReceivedMessage[]> {
    return this.services.moltInbox.list(options)
  }

  inboxCursor (): number {
    return this.services.moltInbox.cursor()
  }

  messages (options: { after?: number, signal?: AbortSignal } = {}): AsyncGenerator<ReceivedMessage> {
    return this.services.moltInbox.messages(options)
  }

  async discover (capability: string, options: DiscoverOptions = {}): Promise<DiscoveredAgent[]> {
    this.assertRunning()
    const found = await this.services.discovery.discover(capability, options)
    if (options.minTrust === undefined && options.sortByTrust !== true) return found
    return this.trust.rank(found, { ...options, trustDomain: options.trustDomain ?? capability })
  }

  peers (): KnownPeer[] {
    return this.services.discovery.peers()
  }

  async card (peer: PeerInput, options: { signal?: AbortSignal, force?: boolean } = {}): Promise<AgentCard> {
    this.assertRunning()
    const peerId = await this.resolvePeer(peer, options)
    await this.services.moltPeers.connect(peerId, options)
    const card = await this.services.cards.fetch(peerId, options)
    this.services.discovery.presence.seen(peerId.toString(), { card })
    return card
  }

  async updateProfile (patch: Partial<AgentProfile>): Promise<void> {
    this.assertRunning()
    const profile = { ...this.profile, ...patch }
    parseConfig({ agent: profile }) // same rules as the config file; throws ConfigError naming the field
    this.services.moltMessages.setProfile(profile)
    await this.services.discovery.advertise(profile.capabilities)
  }

  async rotateKey (options: { signal?: AbortSignal } = {}): Promise<KeyRotationResult> {
    this.assertRunning()
    if (!this.keyFromDataDir) throw new KeyRotationError('this node\'s key was given as privateKey, not read from its data dir: sign a rotation with signRotation() and publish it with node.trust.publishKeyRotation()')
    options.signal?.throwIfAborted()
    // a statement retiring this key is known already (an earlier rotation, or someone holding a leaked copy of the key): nothing is switched
    const retired = this.trust.retired(this.peerId)
    if (retired !== undefined) throw new KeyRotationError(`this key was rotated to ${retired.to} already (statement ${retired.id}): restart the agent to switch to the new key, or recover through the organisation if that was not you`)
    // the seq follows the rotation that brought this key in, as this node's peers know it
    const introduced = this.trust.keyRotations().find(r => r.to === this.peerId.toString())
    const rotated = await rotateKeyFiles(this.dataDir, { expectedPeerId: this.peerId.toString(), minSeq: introduced === undefined ? 1 : introduced.rotation.seq + 1 })
    await this.trust.publishKeyRotation(rotated.rotation)
    const { rotation, oldPeerId, newPeerId, refusedFrom, retiredKeyPath } = rotated
    return { rotation, oldPeerId, newPeerId, refusedFrom, retiredKeyPath, restartRequired: true }
  }

  relays (): RelayStatus[] {
    return this.services.relayClient.relays()
  }

  ownCard (): AgentCard {
    return this.services.cards.own()
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    // readers, waiters and requesters first; then the services (libp2p stops them), the database and the lock
    this.events.stop()
    this.topics?.stop()
    await this.libp2p.stop()
    await this.db.close()
    await this.lock?.release()
  }

  private assertRunning (): void {
    if (this.stopped) throw new NotStartedError('the node is stopped')
  }
}

/** Create and start a molt node: identity from the data dir, libp2p with molt's services, the inbox in LevelDB */
export async function createMoltNode (options: MoltNodeOptions = {}): Promise<MoltNode> {
  const dataDir = resolveDataDir(options.dataDir)
  // a rotation a crash interrupted is finished (or dropped) before the key is read; old keys past their grace are deleted
  const ownRotations = options.privateKey != null ? [] : await finishPendingRotation(dataDir)
  const { key } = options.privateKey != null
    ? { key: options.privateKey }
    : await loadOrCreateKey(join(dataDir, IDENTITY_FILE))
  const identity = identityFromKey(key)
  const fallbackName = `agent-${identity.peerId.toString().slice(-8)}`
  const config = await loadConfig(dataDir, fallbackName)
  if (!existsSync(join(dataDir, CONFIG_FILE))) await saveConfig(dataDir, config)
  const profile: AgentProfile = { ...config.agent, ...options.agent }
  // the organisation certificate the card carries; one for another key (the agent key was replaced) is left out
  const installed = await loadInstalledCertificate(dataDir)
  const certificate = installed?.agent_key === identity.moltKey ? installed : undefined
  const revocations = await loadRevocations(dataDir)

  const lock = options.lock === false
    ? undefined
    : await acquireLock(dataDir, { pid: process.pid, peerId: identity.peerId.toString(), startedAt: Date.now() })
  let db: Database | undefined
  try {
    db = await openDatabase(join(dataDir, DB_DIR))
    const metrics = new AgentMetrics({ processMetrics: options.processMetrics })
    const events = new MoltEvents()
    const node = new DefaultMoltNode(identity, config, dataDir, db, lock, events, metrics, options.privateKey == null)
    // listening before libp2p starts: no task message is dispatched unseen
    node.tasks = await createTaskService({ node, db, topics: () => node.topics, get log () { return node.libp2p.logger.forComponent('molt:tasks') } }, options.tasks)

    const relays = options.relays ?? config.relays
    const mdns = options.mdns ?? false
    // relays are DHT servers: an agent configured with relays bootstraps from them too
    const bootstrap = [...new Set([...(options.bootstrap ?? config.discovery.bootstrap), ...relays])]
    const libp2pOptions = baseLibp2pOptions({
      privateKey: key,
      listen: options.listen ?? config.listen,
      transports: [circuitRelayTransport()],
      discovery: {
        mdns,
        bootstrap,
        // an agent that needs relays is behind NAT: a DHT client (servers must be reachable)
        dht: { clientMode: config.discovery.dhtClient || relays.length > 0, ...options.dht }
      },
      // a private address behind someone's NAT swallows SYNs: give up on it fast so the
      // relayed address is tried (the stock 6 s per address made every relayed dial slow)
      connectionManager: { addressDialTimeout: ADDRESS_DIAL_TIMEOUT },
      metrics: options.libp2pMetrics === true ? metrics.registry : undefined,
      extra: options.libp2p
    }, {
      // hole punching after a relayed connection; known to fail from Node over TCP, so relays carry the traffic
      dcutr: dcutr(),
      ...moltServices({
        db,
        identity,
        agent: profile,
        events,
        metrics,
        org: { certificate: () => certificate, trustedOrgs: () => config.trust.orgs, revocations: () => revocations, revokedAgents: options.revokedAgents ?? config.trust.revokedAgents },
        signMessages: options.signMessages,
        requireSignatures: options.requireSignatures ?? config.speak.requireSignatures,
        inboxMaxMessages: options.inboxMaxMessages,
        inboxWriteDelay: options.inboxWriteDelay,
        outboxMaxMessages: options.outboxMaxMessages,
        speak: options.speak,
        relays,
        maxRelayReservations: options.maxRelayReservations,
        discoverRelays: options.discoverRelays ?? config.discovery.discoverRelays,
        publishRoute: options.publishRoute,
        // nothing brings a node without these DHT peers: its lookups do not wait for one
        peerSource: bootstrap.length > 0 || mdns !== false || (options.libp2p?.peerDiscovery?.length ?? 0) > 0,
        mailboxCheckInterval: options.mailboxCheckInterval,
        trust: { ...options.trust, announceRotations: ownRotations, preTrusted: options.trust?.preTrusted ?? config.trust.preTrusted, inbox: options.trust?.inbox ?? config.trust.inbox },
        heartbeatInterval: options.heartbeatInterval,
        staleAfter: options.staleAfter,
        unhandledRequests: options.unhandledRequests
      })
    })
    // started below, once the task service answers its own requests (they are not "unhandled")
    node.libp2p = await createLibp2p({ ...libp2pOptions, start: false })
    node.libp2p.services.moltHandlers.addResponder(node.tasks)
    await node.libp2p.start()
    const services = node.libp2p.services
    node.topics = await createTopicService({
      pubsub: services.pubsub as any,
      self: node.peerId,
      db,
      signingKey: identity.signingKey,
      agent: () => node.agent,
      deliver: async (items) => services.moltInbound.receive(items),
      routeTo: (peer) => routeOver(node.libp2p.getConnections(peer)).route,
      accept: (peer) => services.trust.inboxDecision(peer) !== 'refuse',
      log: node.libp2p.logger.forComponent('molt:topics')
    })
    node.tasks.start()
    return node
  } catch (err) {
    await db?.close().catch(() => {})
    await lock?.release()
    throw err
  }
}
