import { describe, it, expect, afterAll } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { CliSandbox, type RunningCli } from '../support/cli.js'

/**
 * `molt agent` starts the same after a restart (issues #14.6 and #23.2): the
 * ports it picked and the --relay/--bootstrap it was given are saved in
 * config.json, and it says so. Loopback only: config.json listen is set to
 * 127.0.0.1 before the first start (the default listens on 0.0.0.0).
 */
const sandbox = new CliSandbox()
afterAll(async () => { await sandbox.cleanup() })
/** A deadline for a process start on a loaded shared machine, not a speed requirement */
const START_MS = 60_000

const LOOPBACK = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws']
/** A PeerId no process holds: a relay and a bootstrap peer that never answer (port 1) */
const NOBODY = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'

async function start (dir: string, extra: string[] = []): Promise<{ cli: RunningCli, listening: any }> {
  const cli = await sandbox.start(['agent', '--data-dir', dir, '--json', ...extra])
  const first = await cli.nextLine(START_MS)
  const listening = JSON.parse(first)
  expect(listening.event).toBe('listening')
  return { cli, listening }
}

async function configOf (dir: string): Promise<any> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))
}

describe('molt agent keeps its addresses across restarts', { timeout: 120_000 }, () => {
  it('pins the ports picked at the first start in config.json and listens on them again', async () => {
    const dir = await sandbox.dir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ listen: LOOPBACK }))
    const first = await start(dir)
    expect(first.listening.saved.listen).toHaveLength(2)
    expect(await first.cli.stop()).toEqual({ code: 0, signal: null })
    const pinned = (await configOf(dir)).listen
    expect(pinned).toEqual(first.listening.saved.listen)
    expect(pinned.every((a: string) => !/\/tcp\/0(\/|$)/.test(a))).toBe(true)

    const second = await start(dir)
    expect(second.listening.addresses).toEqual(first.listening.addresses)
    // nothing new to save: no `saved` field
    expect(second.listening.saved).toBeUndefined()
    await second.cli.stop()
  })

  it('uses an explicit --listen as given and does not save it', async () => {
    const dir = await sandbox.dir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ listen: LOOPBACK }))
    const { cli, listening } = await start(dir, ['--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(listening.saved).toBeUndefined()
    await cli.stop()
    expect((await configOf(dir)).listen).toEqual(LOOPBACK)
  })

  it('says which address is taken and how to pick another when a saved port is in use', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => { blocker.listen(0, '127.0.0.1', resolve) })
    try {
      const port = (blocker.address() as AddressInfo).port
      const dir = await sandbox.dir()
      await writeFile(join(dir, 'config.json'), JSON.stringify({ listen: [`/ip4/127.0.0.1/tcp/${port}`] }))
      const { code, stderr } = await sandbox.run(['agent', '--data-dir', dir])
      expect(code).toBe(1)
      expect(stderr).toContain(`cannot listen on 127.0.0.1:${port}`)
      expect(stderr).toContain('config.json listen')
      expect(stderr).toContain('set its port to 0')
    } finally {
      blocker.close()
    }
  })
})

describe('molt agent --relay / --bootstrap are saved (help text says so)', { timeout: 120_000 }, () => {
  it('adds them to config.json, says so, and a restart without the flags still uses them', async () => {
    const dir = await sandbox.dir()
    await writeFile(join(dir, 'config.json'), JSON.stringify({ listen: ['/ip4/127.0.0.1/tcp/0'] }))
    const relay = `/ip4/127.0.0.1/tcp/1/p2p/${NOBODY}`
    const bootstrap = `/ip4/127.0.0.1/tcp/2/p2p/${NOBODY}`
    const first = await sandbox.start(['agent', '--data-dir', dir, '--relay', relay, '--bootstrap', bootstrap])
    await first.nextLine(START_MS)
    await first.stop()
    expect(first.stderr).toContain(`Saved --relay ${relay} to ${join(dir, 'config.json')} relays`)
    expect(first.stderr).toContain(`Saved --bootstrap ${bootstrap} to ${join(dir, 'config.json')} discovery.bootstrap`)
    const config = await configOf(dir)
    expect(config.relays).toEqual([relay])
    expect(config.discovery.bootstrap).toEqual([bootstrap])

    const second = await start(dir)
    expect(second.listening.relays).toEqual([relay])
    expect(second.listening.bootstrap).toEqual([bootstrap])
    expect(second.listening.saved).toBeUndefined()
    await second.cli.stop()

    const help = await sandbox.call(['agent', '--help'])
    expect(help.stdout).toContain('saved to config.json relays for later starts')
    expect(help.stdout).not.toContain('added to config.json')
  })
})
