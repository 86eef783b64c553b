import type { Readable, Writable } from 'node:stream'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import type { ApiClient } from '../api/index.js'
import { attachAgent, type AttachOptions } from './agent.js'
import { registerTools } from './tools.js'
import { MAX_STDIN_MESSAGE_BYTES, MAX_TOOL_INPUT_ELEMENTS, MCP_SERVER_NAME } from './constants.js'

/** An MCP server whose tools act through `client` (a molt agent's local API) */
export function createMcpServer (client: ApiClient, version: string): McpServer {
  const server = new McpServer({ name: MCP_SERVER_NAME, version }, {
    maxToolInputElements: MAX_TOOL_INPUT_ELEMENTS,
    instructions: [
      'Tools of a molt agent: a peer-to-peer node for AI agents. Agents are addressed by PeerId (whoami gives yours).',
      'find_agents discovers agents by capability with trust scores; request asks one and waits for its answer;',
      'read_inbox returns what others sent (answer a request with send_message op "respond" and re = its id);',
      'attest and trust_score record and read trust.'
    ].join(' ')
  })
  registerTools(server, client)
  return server
}

export interface ServeMcpOptions extends AttachOptions {
  dataDir: string
  version: string
  /** @default process.stdin */
  stdin?: Readable
  /** The protocol's only output. @default process.stdout */
  stdout?: Writable
  /** Diagnostics (stderr): never the protocol stream */
  log?: (line: string) => void
  signal: AbortSignal
}

/**
 * Serve MCP over stdio for the agent of `dataDir` (running, else started
 * here) until stdin ends (the client went away) or `signal` aborts.
 */
export async function serveMcp (options: ServeMcpOptions): Promise<void> {
  const log = options.log ?? (() => {})
  const stdin = options.stdin ?? process.stdin
  const agent = await attachAgent(options.dataDir, options)
  log(agent.via === 'api'
    ? `molt mcp: using the running agent ${agent.peerId} (${agent.client.url})`
    : `molt mcp: no agent runs on ${options.dataDir}; started one: ${agent.peerId}, local API ${agent.client.url}`)
  const server = createMcpServer(agent.client, options.version)
  const transport = new StdioServerTransport(stdin, options.stdout ?? process.stdout, { maxBufferSize: MAX_STDIN_MESSAGE_BYTES })
  // a bad line is the client's problem, not a reason to stop: log it and go on
  transport.onerror = (err) => { log(`molt mcp: ${err.message}`) }
  try {
    const ended = new Promise<void>((resolve) => {
      if (options.signal.aborted) resolve()
      options.signal.addEventListener('abort', () => { resolve() }, { once: true })
      stdin.once('end', () => { resolve() })
      stdin.once('close', () => { resolve() })
      // the transport closes itself after a line over MAX_STDIN_MESSAGE_BYTES
      server.server.onclose = () => { resolve() }
    })
    await server.connect(transport)
    log('molt mcp: ready on stdio')
    await ended
  } finally {
    await server.close().catch(() => {})
    await agent.close()
  }
}
