/**
 * The fixed costs of one 1 KiB request/response exchange, each measured alone
 * in CPU µs (process.cpuUsage: every thread of this process, the LevelDB
 * thread pool included), to set beside the CPU per exchange of the agent
 * bench (bench/agent.ts) and NATS's: what molt must pay per message that a
 * broker's core request/reply does not (issue #19).
 *
 *   node dist/bench/speak-costs.js
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ed25519 } from '@noble/curves/ed25519.js'
import { asCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import { createMessage, signMessage, verifyMessageSource, canonicalize, validateMessage, publicKeyToMoltKey, keyObjectToRawPublicKey } from '../src/moltspeak/index.js'
import { createDatabase } from '../src/storage/index.js'
import { MESSAGE_BYTES } from './protocol.js'

/** CPU µs per call of `fn` (after a warm-up of a tenth as many calls) */
function cpuPerCall (calls: number, fn: (i: number) => void): number {
  for (let i = 0; i < calls / 10; i++) fn(i)
  const start = process.cpuUsage()
  for (let i = 0; i < calls; i++) fn(i)
  const { user, system } = process.cpuUsage(start)
  return (user + system) / calls
}

async function cpuPerAwait (calls: number, fn: (i: number) => Promise<void>): Promise<number> {
  for (let i = 0; i < calls / 10; i++) await fn(i)
  const start = process.cpuUsage()
  for (let i = 0; i < calls; i++) await fn(i)
  const { user, system } = process.cpuUsage(start)
  return (user + system) / calls
}

export async function runSpeakCosts (log: (line: string) => void = console.log): Promise<Record<string, number>> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const raw = keyObjectToRawPublicKey(publicKey)
  const from = { agent: 'bench', org: 'local', key: publicKeyToMoltKey(raw) }
  const p = { domain: 'bench', data: 'a'.repeat(MESSAGE_BYTES - 330) }
  const message = createMessage({ op: 'query', from, to: { agent: 'peer', org: 'peer' }, p })
  const json = JSON.stringify(message)
  const bytes = new TextEncoder().encode(json)
  const signed = signMessage(message, privateKey)
  const signedJson = JSON.stringify(signed)
  const canonical = Buffer.from(canonicalize(message))
  const signature = sign(null, canonical, privateKey)
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32)
  const nobleSig = ed25519.sign(canonical, seed)
  const k = new Uint8Array(32).fill(7)
  const nonce = new Uint8Array(12)
  const ad = new Uint8Array(0)
  const frame = new Uint8Array(bytes.byteLength + 16).fill(1) // a REQUEST frame inside a yamux frame, ≈ what Noise seals
  const sealed = { node: Buffer.from(nodeCrypto.chaCha20Poly1305Encrypt(frame, nonce, ad, k).subarray()), wasm: Buffer.from(asCrypto.chaCha20Poly1305Encrypt(frame, nonce, ad, k).subarray()) }

  const costs: Record<string, number> = {}
  const row = (name: string, us: number): void => {
    costs[name] = us
    log(`  ${us.toFixed(1).padStart(7)} µs  ${name}`)
  }
  log(`fixed costs of a ${json.length}-byte MoltSpeak query (CPU µs per operation, this process, all threads)`)
  row('createMessage (id: randomUUID, ts)', cpuPerCall(20_000, () => { createMessage({ op: 'query', from, to: { agent: 'peer', org: 'peer' }, p }) }))
  row('JSON.stringify + UTF-8 encode (one serialization per message)', cpuPerCall(20_000, () => { new TextEncoder().encode(JSON.stringify(message)) }))
  row('UTF-8 decode + JSON.parse + validateMessage (speak check)', cpuPerCall(20_000, () => { validateMessage(JSON.parse(new TextDecoder().decode(bytes))) }))
  row('canonicalize (what a signature covers)', cpuPerCall(20_000, () => { canonicalize(message) }))
  row('Ed25519 sign, node:crypto (OpenSSL)', cpuPerCall(5_000, () => { sign(null, canonical, privateKey) }))
  row('Ed25519 verify, node:crypto (OpenSSL)', cpuPerCall(5_000, () => { verify(null, canonical, publicKey, signature) }))
  row('Ed25519 sign, @noble/curves', cpuPerCall(500, () => { ed25519.sign(canonical, seed) }))
  row('Ed25519 verify, @noble/curves', cpuPerCall(500, () => { ed25519.verify(nobleSig, canonical, raw) }))
  row('signMessage (canonicalize + sign; only with signMessages or for an outbox/mailbox)', cpuPerCall(5_000, () => { signMessage(message, privateKey) }))
  row('verifyMessageSource (canonical source text + verify; signed messages only)', cpuPerCall(5_000, () => { verifyMessageSource(signed, signedJson) }))
  row('Noise seal, ChaCha20-Poly1305 node:crypto', cpuPerCall(20_000, () => { nodeCrypto.chaCha20Poly1305Encrypt(frame, nonce, ad, k) }))
  row('Noise open, ChaCha20-Poly1305 node:crypto', cpuPerCall(20_000, (i) => { nodeCrypto.chaCha20Poly1305Decrypt(Buffer.from(sealed.node), nonce, ad, k, undefined) }))
  row('Noise seal, ChaCha20-Poly1305 wasm (Noise\'s choice below 1,200 bytes)', cpuPerCall(20_000, () => { asCrypto.chaCha20Poly1305Encrypt(frame, nonce, ad, k) }))
  row('Noise open, ChaCha20-Poly1305 wasm', cpuPerCall(20_000, () => { asCrypto.chaCha20Poly1305Decrypt(Buffer.from(sealed.wasm), nonce, ad, k, undefined) }))

  const dir = await mkdtemp(join(tmpdir(), 'molt-bench-costs-'))
  const db = createDatabase(dir)
  try {
    await db.open()
    const inbox = db.sublevel('inbox', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const value = `[{"cursor":1,"receivedAt":1,"peer":"12D3KooW","route":"direct","message":${json}}]`
    row('LevelDB batch of one inbox record, awaited (main thread + pool thread)', await cpuPerAwait(5_000, async (i) => { await inbox.batch([{ type: 'put', key: String(i).padStart(16, '0'), value }]) }))
  } finally {
    await db.close()
    await rm(dir, { recursive: true, force: true })
  }
  return costs
}

if (import.meta.url === `file://${process.argv[1]}`) await runSpeakCosts()
