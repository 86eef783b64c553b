import { multiaddr } from '@multiformats/multiaddr'
import { applyEnv } from '../../config/env.js'
import { loadConfig, pinListenPorts, saveAgentSettings, type AgentSettings } from '../../config/index.js'
import { createMoltNode, type MessageHandler, type ReceivedMessage } from '../../node.js'
import { loadOrCreateApiToken, removeApiEndpoint, startApiServer, writeApiEndpoint } from '../../api/index.js'
import type { Op } from '../../moltspeak/index.js'
import { ListenAddressInUseError, UsageError } from '../errors.js'
import { booleanFlag, checkPeerAddress, integerFlag, listFlag, logFlags, noPositionals, stringFlag, LOG_OPTIONS } from '../args.js'
import type { Command } from '../command.js'

/** Ops --echo answers */
const ECHO_OPS: Op[] = ['query', 'task', 'tool']

/** The --echo demo handler: reply with the request's payload */
const echo: MessageHandler = (message) => ({ status: 'success', data: { echo: message.p } })

export const agent: Command = {
  spec: {
    name: 'agent',
    details: [
      'Prints the PeerId and every listen address (with /p2p/<id>), then one line per received message.',
      'With --json the first line is {"event":"listening","peerId":…,"addresses":[…],"apiPort":…}',
      'and each message is {"event":"message",…}. Other molt commands with the same data dir',
      'use this agent through its API (127.0.0.1 only; token in <data-dir>/api-token).',
      '',
      'It finds other molt agents on the LAN by mDNS (_molt._udp.local) and connects to them, with no',
      'configuration. mDNS multicasts on every interface: turn it off with --no-mdns (or config.json',
      'discovery.mdns false) on networks you do not own. DHT bootstrap peers come from config.json',
      'discovery.bootstrap plus every --bootstrap.',
      '',
      'A restart starts the same: ports picked at the first start (config.json listen, port 0) are',
      'written back to config.json listen, so the printed multiaddrs stay valid; --relay and --bootstrap',
      'values are saved in config.json (relays, discovery.bootstrap). Each start says what it saved.',
      'An explicit --listen (or MOLT_LISTEN) is used as given and not saved: --listen /ip4/0.0.0.0/tcp/0',
      'picks new ports for this run only.',
      '',
      '--log-format json turns the event lines (listening, message, stopping, errors; peer:connect and',
      'peer:disconnect at debug) into one {"ts","level","msg",…} object per line on stdout. A message line',
      'names the message (id, op, from, peer, route) but never carries its payload: read that from the',
      'inbox (molt inbox, the local API). DEBUG=molt:*,libp2p:* still adds libp2p\'s debug lines on stderr.',
      '',
      'A request (hello, verify, query, task, tool, consent) that nothing here answers — no --echo, no local API',
      'client on /v1/stream (now or in the last 30 s) — is kept in the inbox and answered at once with an error',
      'E_CAPABILITY_UNKNOWN naming the op, so the sender does not wait in vain (--keep-unhandled: no reply).',
      'Heartbeat ping/pong are answered but neither stored in the inbox nor printed (--show-housekeeping prints them).',
      'If stdout closes (molt agent | head), the agent stops printing and keeps running; stop it with SIGTERM.'
    ].join('\n'),
    options: {
      listen: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'listen address for this run, not saved (default: config.json listen, whose port-0 entries are pinned to the ports picked at the first start)' },
      'api-port': { type: 'string', arg: '<port>', description: 'local API port on 127.0.0.1, 0 = any free port (default: config.json api.port)' },
      'no-mdns': { type: 'boolean', description: 'do not look for LAN peers by mDNS (default: config.json discovery.mdns, true)' },
      bootstrap: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'DHT bootstrap peer, a multiaddr ending in /p2p/<PeerId>; saved to config.json discovery.bootstrap for later starts' },
      relay: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'circuit relay to stay reachable through (multiaddr ending in /p2p/<PeerId>); saved to config.json relays for later starts; reservations are kept on two' },
      echo: { type: 'boolean', description: `demo/test aid: answer ${ECHO_OPS.join('/')} with respond {status:"success",data:{echo:<request p>}}` },
      'keep-unhandled': { type: 'boolean', description: 'do not answer requests nothing here handles (for API clients that poll GET /v1/messages): the sender times out' },
      'show-housekeeping': { type: 'boolean', description: 'also print a line for each ping/pong (presence heartbeats, molt ping); the inbox keeps them only when sent exactly-once' },
      ...LOG_OPTIONS
    }
  },

  async run ({ args, dataDir, out, signal }) {
    noPositionals(args, this.spec)
    const listen = listFlag(args.values, 'listen')
    for (const address of listen ?? []) {
      try {
        multiaddr(address)
      } catch (err: any) {
        throw new UsageError(`--listen ${address} is not a multiaddr: ${err.message}`)
      }
    }
    const apiPortFlag = integerFlag(stringFlag(args.values, 'api-port'), 'api-port', 0, 65535)
    const bootstrapFlags = (listFlag(args.values, 'bootstrap') ?? []).map(a => checkPeerAddress(a, '--bootstrap'))
    // a bad --log-* value is a usage error before anything else happens
    logFlags(args.values, {})

    // flags > MOLT_* environment > config.json > defaults
    const config = applyEnv(await loadConfig(dataDir))
    out.useLogging(logFlags(args.values, config.log))
    const mdns = !booleanFlag(args.values, 'no-mdns') && config.discovery.mdns
    const bootstrap = [...new Set([...config.discovery.bootstrap, ...bootstrapFlags])]
    const relayFlags = (listFlag(args.values, 'relay') ?? []).map(a => checkPeerAddress(a, '--relay'))
    const relays = [...new Set([...config.relays, ...relayFlags])]
    const token = await loadOrCreateApiToken(dataDir)
    const node = await createMoltNode({
      dataDir,
      listen: listen ?? config.listen,
      // only what the environment set: otherwise the node's own fallback name (from its PeerId) stands
      agent: {
        ...(process.env.MOLT_AGENT_NAME?.trim() ? { name: config.agent.name } : {}),
        ...(process.env.MOLT_AGENT_ORG?.trim() ? { org: config.agent.org } : {})
      },
      requireSignatures: config.speak.requireSignatures,
      mdns,
      bootstrap,
      relays,
      // one node in this process: libp2p's own metrics join molt's on /metrics
      libp2pMetrics: true,
      unhandledRequests: booleanFlag(args.values, 'keep-unhandled') ? 'keep' : 'refuse'
    }).catch((err: Error) => { throw explainListenFailure(err, listen !== undefined) })
    let server
    try {
      server = await startApiServer(node, { port: apiPortFlag ?? config.api.port, token })
      await writeApiEndpoint(dataDir, { port: server.port, pid: process.pid })
    } catch (err) {
      await server?.close()
      await node.stop()
      throw err
    }

    let early: ReceivedMessage[] | undefined = []
    // passive: printing a line is not answering, so requests nothing handles are still refused
    node.addEventListener('message', (evt: CustomEvent<ReceivedMessage>) => {
      if (early != null) early.push(evt.detail)
      else out.message(evt.detail)
    }, { passive: true })
    if (booleanFlag(args.values, 'echo')) {
      for (const op of ECHO_OPS) node.handle(op, echo)
    }
    if (booleanFlag(args.values, 'show-housekeeping')) {
      node.addEventListener('housekeeping', (evt: CustomEvent<ReceivedMessage>) => { out.message(evt.detail, { housekeeping: true }) })
    }
    if (out.enabled('debug')) {
      node.libp2p.addEventListener('peer:connect', (evt) => {
        const address = node.libp2p.getConnections(evt.detail)[0]?.remoteAddr.toString()
        out.event('debug', 'peer:connect', { fields: { peer: evt.detail.toString(), ...(address !== undefined ? { address } : {}) } })
      })
      node.libp2p.addEventListener('peer:disconnect', (evt) => { out.event('debug', 'peer:disconnect', { fields: { peer: evt.detail.toString() } }) })
    }

    // what this start chose is kept for the next one (issue #14: stable addresses; #23: flags that stick)
    const pinListen = listen === undefined && (process.env.MOLT_LISTEN ?? '').trim() === ''
    let saved: AgentSettings = {}
    try {
      saved = await saveAgentSettings(dataDir, {
        listen: pinListen ? pinListenPorts(config.listen, node.getMultiaddrs()) : undefined,
        relays: relayFlags,
        bootstrap: bootstrapFlags
      })
    } catch (err: any) {
      out.event('warn', 'config not saved', { human: `molt: could not save this start's settings to config.json: ${err.message}`, fields: { error: err.message } })
    }

    const peerId = node.peerId.toString()
    const addresses = node.getMultiaddrs().map(ma => {
      const text = ma.toString()
      return text.endsWith(`/p2p/${peerId}`) ? text : `${text}/p2p/${peerId}`
    })
    out.event('info', 'listening', {
      human: [
        `molt agent ${node.agent.agent}@${node.agent.org}`,
        `PeerId ${peerId}`,
        'Listening on:',
        ...addresses.map(a => `  ${a}`),
        `Local API http://127.0.0.1:${server.port} (token in ${dataDir}/api-token)`,
        `LAN discovery (mDNS) ${mdns ? 'on' : 'off'}` + (bootstrap.length > 0 ? `, ${bootstrap.length} bootstrap peer${bootstrap.length === 1 ? '' : 's'}` : '')
      ],
      fields: { peerId, addresses, apiPort: server.port, mdns, bootstrap, relays, ...(Object.keys(saved).length > 0 ? { saved } : {}) }
    })
    for (const line of describeSaved(saved, dataDir)) out.note(line)
    // messages fetched from relay mailboxes at start may come before the listening line, which scripts read first
    for (const entry of early.splice(0)) out.message(entry)
    early = undefined

    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      else signal.addEventListener('abort', () => { resolve() }, { once: true })
    })
    out.event('info', 'stopping', { human: 'molt: stopping', note: true })
    await removeApiEndpoint(dataDir)
    await server.close()
    await node.stop()
    return 0
  }
}


/** What saveAgentSettings wrote, for people */
function describeSaved (saved: AgentSettings, dataDir: string): string[] {
  const file = `${dataDir}/config.json`
  return [
    ...(saved.listen != null ? [`Saved the listen ports to ${file} listen: ${saved.listen.join(' ')} (the next start uses the same addresses)`] : []),
    ...(saved.relays ?? []).map(relay => `Saved --relay ${relay} to ${file} relays (used at every start from now on)`),
    ...(saved.bootstrap ?? []).map(peer => `Saved --bootstrap ${peer} to ${file} discovery.bootstrap (used at every start from now on)`)
  ]
}

/** A port taken by another program: say which address, where it came from, and the ways out */
function explainListenFailure (err: Error, fromFlag: boolean): Error {
  const inUse = /EADDRINUSE: address already in use ([^\s]+)/.exec(String(err.message) + String((err as any).errors?.map((e: Error) => e.message) ?? ''))
  if (inUse == null) return err
  const source = fromFlag ? '--listen' : 'config.json listen (or MOLT_LISTEN)'
  return new ListenAddressInUseError(`cannot listen on ${inUse[1]}: another program uses that port. It comes from ${source}; stop that program, ` +
    'or pass --listen <multiaddr> for this run, or set its port to 0 in config.json listen to pick (and save) a new one')
}
