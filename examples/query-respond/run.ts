/**
 * Example 1 — two agents on one machine, query → respond with the SDK.
 * Starts the responder as a separate process, asks it from this one, and ends
 * with one deterministic line:
 *   example query-respond: respond from weather@example: sunny in Tokyo, high 21°C
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ask } from './ask.js'

const responder = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'responder.js')], { stdio: ['pipe', 'pipe', 'inherit'] })
try {
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: responder.stdout }).once('line', resolve)
    responder.once('exit', (code) => { reject(new Error(`responder exited with code ${code}`)) })
  })
  process.stdout.write(`example query-respond: ${await ask(address)}\n`)
} finally {
  responder.stdin.end()
}
