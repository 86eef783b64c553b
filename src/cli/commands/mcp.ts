import { multiaddr } from '@multiformats/multiaddr'
import { serveMcp } from '../../mcp/index.js'
import { moltVersion } from '../../relay/dashboard/version.js'
import { UsageError } from '../errors.js'
import { booleanFlag, listFlag, noPositionals } from '../args.js'
import type { Command } from '../command.js'

export const mcp: Command = {
  spec: {
    name: 'mcp',
    details: [
      'Speaks MCP on stdin/stdout; everything else (logs, errors) goes to stderr. Tools: whoami, list_peers,',
      'send_message, request, read_inbox, find_agents (with trust scores), get_card, trust_score, attest,',
      'offer_task, claim_task, complete_task, list_tasks.',
      'Uses the agent running with the data dir (through its local API), else starts one here (with its',
      'config.json and local API) for as long as the MCP client stays connected. Every tool goes through',
      'the local API, so the agent\'s limits, validation and trust policy apply.',
      'Register it with an MCP client, e.g. {"mcpServers":{"molt":{"command":"npx","args":["molt","mcp","--data-dir","/home/me/.molt"]}}}'
    ].join('\n'),
    options: {
      listen: { type: 'string', multiple: true, arg: '<multiaddr>', description: 'when no agent runs: listen address of the node started here (default: config.json listen)' },
      'no-mdns': { type: 'boolean', description: 'when no agent runs: no mDNS LAN discovery for the node started here (default: config.json discovery.mdns)' }
    }
  },

  async run ({ args, dataDir, signal }) {
    noPositionals(args, this.spec)
    // stdout carries the protocol: a --json document there would corrupt it
    if (booleanFlag(args.values, 'json')) throw new UsageError('molt mcp speaks MCP on stdout and takes no --json')
    const listen = listFlag(args.values, 'listen')?.map(checkListen)
    await serveMcp({
      dataDir,
      version: moltVersion(),
      listen,
      ...(booleanFlag(args.values, 'no-mdns') ? { mdns: false } : {}),
      signal,
      log: (line) => { process.stderr.write(line + '\n') }
    })
    return 0
  }
}

function checkListen (address: string): string {
  try {
    return multiaddr(address).toString()
  } catch (err: any) {
    throw new UsageError(`--listen ${address} is not a multiaddr: ${err.message}`)
  }
}
