export { createMcpServer, serveMcp, type ServeMcpOptions } from './server.js'
export { attachAgent, type AttachedAgent, type AttachOptions } from './agent.js'
export { registerTools, describeError } from './tools.js'
export * as mcpConstants from './constants.js'
