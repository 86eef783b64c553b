import type { Command } from '../command.js'

/**
 * Every command: its name, the one line `molt --help` shows, and its module,
 * imported only when the command runs. `molt --help`, `molt config` and the
 * commands that talk to a running agent's API so never load libp2p
 * (start-up ≈ 0.2 s of CPU instead of ≈ 2 s; test/unit/cli-startup.test.ts).
 */
export interface CommandEntry {
  name: string
  summary: string
  load(): Promise<Command>
}

export const COMMANDS: CommandEntry[] = [
  { name: 'init', summary: 'Create this agent\'s identity key and config (re-running keeps the key, updates the given fields)', load: async () => (await import('./init.js')).init },
  { name: 'id', summary: 'Show this agent\'s identity (PeerId, DID, key, name) and, when its agent runs, its addresses', load: async () => (await import('./id.js')).id },
  { name: 'agent', summary: 'Run this agent\'s node and its local API until SIGINT/SIGTERM', load: async () => (await import('./agent.js')).agent },
  { name: 'send', summary: 'Send one MoltSpeak message to <peer> (a PeerId, or a multiaddr ending in /p2p/<id>)', load: async () => (await import('./send.js')).send },
  { name: 'receipt', summary: 'Print the signed delivery receipt of a message sent with molt send --receipt', load: async () => (await import('./receipt.js')).receipt },
  { name: 'ping', summary: 'Measure MoltSpeak ping → pong round trips to <peer> (multiaddr with /p2p/<id>, or PeerId)', load: async () => (await import('./ping.js')).ping },
  { name: 'inbox', summary: 'List received messages, oldest first, from a cursor on', load: async () => (await import('./inbox.js')).inbox },
  { name: 'outbox', summary: 'List messages waiting in the outbox (undelivered so far) and, with --dead, those given up on', load: async () => (await import('./outbox.js')).outbox },
  { name: 'find', summary: 'Find agents offering <capability> on the LAN and in the DHT, each with its verified card', load: async () => (await import('./find.js')).find },
  { name: 'card', summary: 'Show <peer>\'s verified agent card (multiaddr with /p2p/<id>, or PeerId), or this agent\'s own', load: async () => (await import('./card.js')).card },
  { name: 'trust', summary: 'Sign attestations about other agents, read this agent\'s trust scores, list stored attestations', load: async () => (await import('./trust.js')).trustCommand },
  { name: 'peers', summary: 'List the peers this agent knows: status, role (agent / relay), last seen, route, name, RTT', load: async () => (await import('./peers.js')).peers },
  { name: 'relay', summary: 'Run a volunteer circuit relay (with the private DHT) until SIGINT/SIGTERM', load: async () => (await import('./relay.js')).relay },
  { name: 'config', summary: 'Show the effective configuration (defaults + config.json + MOLT_* environment) or the config file path', load: async () => (await import('./config.js')).config },
  { name: 'mcp', summary: 'Serve this agent\'s tools to an LLM client over the Model Context Protocol (stdio)', load: async () => (await import('./mcp.js')).mcp },
  { name: 'task', summary: 'Offer tasks to agents, claim them ("first agent wins"), report progress and completion', load: async () => (await import('./task.js')).taskCommand },
  { name: 'topic', summary: 'Team topics: join, leave, publish signed MoltSpeak messages to every member', load: async () => (await import('./topic.js')).topicCommand },
  { name: 'key', summary: 'Rotate this agent\'s key: sign "old → new" with both keys, keep the trust score (protocols/identity.md)', load: async () => (await import('./key.js')).key },
  { name: 'org', summary: 'Organisation keys and the certificates that vouch for agents (protocols/identity.md)', load: async () => (await import('./org.js')).org }
]
