/** Limits and defaults of `molt mcp` (README "Use from an LLM agent") */

import { MiB, second } from '../constants.js'

/** Name the server gives itself in the MCP `initialize` answer */
export const MCP_SERVER_NAME = 'molt'

/**
 * Largest JSON-RPC line read from stdin, in bytes. A MoltSpeak message is at
 * most 1 MiB (the API's limit); this leaves room for JSON escaping. Over it the
 * transport drops its buffer and reports an error (logged on stderr).
 */
export const MAX_STDIN_MESSAGE_BYTES = 4 * MiB

/** Most array elements plus object members one `tools/call` may carry (bounds nesting and width before the tool runs) */
export const MAX_TOOL_INPUT_ELEMENTS = 10_000

/**
 * How long `request` waits for a reply by default, in ms. Below the 60 s an MCP
 * client (the SDK's Client) waits for a tool by default, so the node's own
 * E_TIMEOUT reaches the model instead of a client-side timeout.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30 * second

/** Longest `timeoutMs` a tool accepts (the local API's own limit), in ms */
export const MAX_TOOL_TIMEOUT_MS = 10 * 60 * second

/** Messages `read_inbox` returns by default: small, for a model's context */
export const DEFAULT_INBOX_LIMIT = 20
/** Most messages one `read_inbox` returns */
export const MAX_INBOX_LIMIT = 100
/**
 * Most bytes of messages (as JSON) one `read_inbox` returns; at least one
 * message always (a message is ≤ 1 MiB). Keeps a page within a model's context
 * and under the 10 MB an MCP client reads in one line; `next` says where the rest starts.
 */
export const MAX_INBOX_PAGE_BYTES = 2 * MiB
/** Longest `waitMs` of `read_inbox` (wait for a first message), in ms; under the client's 60 s tool timeout */
export const MAX_INBOX_WAIT_MS = 50 * second
/** How often `read_inbox` looks again while it waits for a message, in ms */
export const INBOX_POLL_MS = 250

/** Agents `find_agents` returns by default (the API allows 1-100) */
export const DEFAULT_FIND_LIMIT = 10
/** How long `find_agents` searches by default, in ms (local knowledge answers at once; the DHT may take this long) */
export const DEFAULT_FIND_TIMEOUT_MS = 10 * second

/** Longest capability name, PeerId/multiaddr, domain and free text a tool accepts, in characters */
export const MAX_CAPABILITY_LENGTH = 128
export const MAX_PEER_LENGTH = 1024
export const MAX_DOMAIN_LENGTH = 128
export const MAX_TEXT_LENGTH = 1024
