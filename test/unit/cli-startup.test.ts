/**
 * The CLI loads a command's module only when that command runs, and the
 * commands a running agent serves through its API never load libp2p or
 * LevelDB: `molt --help`, `molt config` or `molt inbox` start in a fraction of
 * the ≈ 2 s of CPU that loading the whole node costs.
 */
import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { completion } from '../support/process.js'
import { COMMANDS } from '../../src/cli/commands/index.js'

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))
const COMMANDS_DIR = new URL('../../dist/src/cli/commands/', import.meta.url)
const TRACE = fileURLToPath(new URL('../support/module-trace.mjs', import.meta.url))
/** Packages only a node of our own needs */
const HEAVY = /\/node_modules\/(libp2p|@libp2p\/(kad-dht|tcp|websockets|circuit-relay-v2|mdns)|@chainsafe\/libp2p-(noise|yamux|gossipsub)|level|classic-level)\//

/** The file modules a `node` process resolves running `args` */
async function modulesLoaded (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null, stdout: string, modules: string[] }> {
  const child = spawn(process.execPath, ['--import', TRACE, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const result = await completion(child, 60_000)
  const modules = result.stderr.split('\n').filter(line => line.startsWith('module-trace ')).map(line => line.slice('module-trace '.length))
  return { code: result.code, stdout: result.stdout, modules }
}

/** Commands that a running agent serves through its local API, or that need no network at all */
const LIGHT = ['init', 'id', 'send', 'receipt', 'ping', 'inbox', 'outbox', 'find', 'card', 'trust', 'peers', 'config', 'task', 'topic', 'org', 'key']

describe('CLI start-up', () => {
  it('molt --help lists every command without loading any command module or libp2p', async () => {
    const { code, stdout, modules } = await modulesLoaded([CLI, '--help'])
    expect(code).toBe(0)
    for (const entry of COMMANDS) expect(stdout).toContain(`  ${entry.name} `)
    expect(modules.filter(url => HEAVY.test(url))).toEqual([])
    expect(modules.filter(url => url.startsWith(COMMANDS_DIR.href) && !url.endsWith('/index.js'))).toEqual([])
  })

  it('molt config path loads its own command only, and no libp2p', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'molt-startup-'))
    try {
      const { code, stdout, modules } = await modulesLoaded([CLI, 'config', 'path', '--data-dir', dir])
      expect(code).toBe(0)
      expect(stdout.trim()).toBe(join(dir, 'config.json'))
      expect(modules.filter(url => HEAVY.test(url))).toEqual([])
      const commands = modules.filter(url => url.startsWith(COMMANDS_DIR.href)).map(url => url.slice(COMMANDS_DIR.href.length))
      expect(new Set(commands)).toEqual(new Set(['index.js', 'config.js']))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('the modules of the commands a running agent serves load no libp2p or LevelDB (a node of their own is imported only when no agent runs)', async () => {
    const urls = LIGHT.map(name => new URL(`${name}.js`, COMMANDS_DIR).href)
    const { code, modules } = await modulesLoaded(['--input-type=module', '-e', `for (const url of ${JSON.stringify(urls)}) await import(url)`])
    expect(code).toBe(0)
    for (const url of urls) expect(modules).toContain(url)
    expect(modules.filter(module => HEAVY.test(module))).toEqual([])
  })

  it('every entry of the command table loads the command of that name; loading them all does load libp2p (so the check above can fail)', async () => {
    const table = new URL('index.js', COMMANDS_DIR).href
    const script = `const { COMMANDS } = await import(${JSON.stringify(table)})
      for (const entry of COMMANDS) console.log(JSON.stringify({ name: entry.name, loaded: (await entry.load()).spec.name }))`
    const { code, stdout, modules } = await modulesLoaded(['--input-type=module', '-e', script])
    expect(code).toBe(0)
    const loaded = stdout.trim().split('\n').map(line => JSON.parse(line))
    expect(loaded.map(l => l.name)).toEqual(COMMANDS.map(entry => entry.name))
    for (const { name, loaded: specName } of loaded) expect(specName).toBe(name)
    expect(modules.some(module => HEAVY.test(module))).toBe(true)
  })
})
