import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { CLI } from './cli.js'

/** A real `molt mcp` process driven by the MCP SDK's own client over stdio */
export class McpSession {
  readonly client = new Client({ name: 'molt-test', version: '1.0.0' })
  readonly transport: StdioClientTransport
  stderr = ''
  /** Protocol errors the client saw (a stray line on the server's stdout lands here) */
  readonly errors: Error[] = []
  pid?: number

  constructor (args: string[]) {
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && key !== 'DEBUG') env[key] = value
    this.transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', ...args], env, stderr: 'pipe' })
    this.transport.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString('utf8') })
    this.client.onerror = (err) => { this.errors.push(err) }
  }

  async start (): Promise<this> {
    await this.client.connect(this.transport)
    this.pid = this.transport.pid ?? undefined
    return this
  }

  /** Call a tool; the result as the client sees it */
  async call (name: string, args: Record<string, unknown> = {}, timeout = 60_000): Promise<CallToolResult> {
    return await this.client.callTool({ name, arguments: args }, undefined, { timeout }) as CallToolResult
  }

  /** Call a tool that must succeed: its structured content */
  async ok<T = any> (name: string, args: Record<string, unknown> = {}): Promise<T> {
    const result = await this.call(name, args)
    if (result.isError === true) throw new Error(`${name} failed: ${JSON.stringify(result.content)}\n${this.stderr}`)
    return result.structuredContent as T
  }

  /** Close the client (ends the server's stdin), then make sure the process is gone: SIGKILL by PID */
  async close (): Promise<void> {
    await this.client.close().catch(() => {})
    if (this.pid !== undefined && alive(this.pid)) process.kill(this.pid, 'SIGKILL')
  }
}

export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The text of an error result */
export function errorText (result: CallToolResult): string {
  expectError(result)
  return (result.content as Array<{ type: string, text?: string }>).map(c => c.text ?? '').join('\n')
}

function expectError (result: CallToolResult): void {
  if (result.isError !== true) throw new Error(`expected an error result, got ${JSON.stringify(result)}`)
}
