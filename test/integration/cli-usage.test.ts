import { describe, it, expect, afterAll } from 'vitest'
import { spawnSync } from 'node:child_process'
import { readFileSync, existsSync } from 'node:fs'
import { CLI, CliSandbox } from '../support/cli.js'
import { MIN_NODE_MAJOR, unsupportedNode } from '../../src/cli/node-version.js'
import { COMMANDS } from '../../src/cli/commands/index.js'
import { join } from 'node:path'
import { openDatabase } from '../../src/storage/index.js'
import { Inbox } from '../../src/inbox/index.js'
import { createMessage } from '../../src/moltspeak/index.js'
import { DB_DIR } from '../../src/constants.js'

const sandbox = new CliSandbox()
afterAll(async () => { await sandbox.cleanup() })
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))

describe('molt usage a newcomer meets', () => {
  it('molt --version (and -V) prints the package version; --json as {version, node}', async () => {
    for (const flag of ['--version', '-V']) {
      const text = await sandbox.call([flag])
      expect(text).toMatchObject({ code: 0, stdout: `molt ${pkg.version as string}\n` })
    }
    const json = await sandbox.call(['--version', '--json'])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual({ version: pkg.version, node: process.versions.node })
  })

  it('molt help <command> is molt <command> --help, for every command', async () => {
    for (const { name } of COMMANDS) {
      const viaHelp = await sandbox.call(['help', name])
      const viaFlag = await sandbox.call([name, '--help'])
      expect(viaHelp.code, name).toBe(0)
      expect(viaHelp.stdout, name).toBe(viaFlag.stdout)
      expect(viaHelp.stdout, name).toMatch(new RegExp(`^Usage: molt ${name}`))
    }
  })

  it('molt --help names the exit codes and --version', async () => {
    const { code, stdout } = await sandbox.call(['--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/Exit codes: 0 ok, 1 failure.*\n2 bad command line, 130 interrupted.*75.*\n.*3 another agent won/)
    expect(stdout).toContain('molt --version')
  })

  it('an option before the command says where options go (exit 2), not "unknown command"', async () => {
    const { code, stderr, stdout } = await sandbox.call(['--json', 'id'])
    expect(code).toBe(2)
    expect(stderr).toBe('molt: options go after the command: molt <command> --json (see molt --help)\n')
    expect(JSON.parse(stdout)).toMatchObject({ error: { code: 'E_INVALID_PARAM' } })
  })

  it('a <peer> that is neither a PeerId nor a multiaddr is named as such (exit 2), without libp2p\'s decoder jargon', async () => {
    for (const command of ['send', 'ping']) {
      const { code, stderr } = await sandbox.call([command, 'bob', '--op', 'ping'].slice(0, command === 'send' ? 4 : 2))
      expect(code, command).toBe(2)
      expect(stderr, command).toBe(`molt: <peer> "bob" is neither a PeerId (12D3KooW…) nor a multiaddr (/ip4/…/tcp/…/p2p/<PeerId>) (see molt ${command} --help)\n`)
    }
    // a broken multiaddr still says what is wrong with it
    expect((await sandbox.call(['ping', '/ip4/1.2.3/tcp/1'])).stderr).toMatch(/is not a valid multiaddr: .*1\.2\.3/)
  })

  it('an older Node is told what to do instead of failing inside libp2p', () => {
    expect(`>=${MIN_NODE_MAJOR}`).toBe(pkg.engines.node)
    expect(unsupportedNode(process.versions.node)).toBeUndefined()
    expect(unsupportedNode('22.0.0')).toBeUndefined()
    expect(unsupportedNode('24.1.0')).toBeUndefined()
    expect(unsupportedNode('20.20.2')).toMatch(/^molt needs Node\.js 22 or later; this is Node\.js 20\.20\.2\. .*npm run molt --/)
    // the program itself, where an older node is installed (the development machines have Node 20 as /usr/bin/node)
    const old = '/usr/bin/node'
    if (!existsSync(old)) return
    const version = spawnSync(old, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim()
    if (unsupportedNode(version) === undefined) return
    const run = spawnSync(old, [CLI, 'id', '--data-dir', '/nonexistent-molt-dir'], { encoding: 'utf8', env: { ...process.env, MOLT_HOME: '/nonexistent-molt-dir' } })
    expect(run.status).toBe(1)
    expect(run.stderr).toBe(`molt: ${unsupportedNode(version) as string}\n`)
  })

  it('molt inbox --follow numbers its lines like molt inbox, so a newcomer can go on with --after', async () => {
    const dir = await sandbox.dir()
    expect((await sandbox.call(['init', '--data-dir', dir])).code).toBe(0)
    const db = await openDatabase(join(dir, DB_DIR))
    const inbox = new Inbox(db, 1000)
    await inbox.open()
    const json = JSON.stringify(createMessage({ op: 'query', from: { agent: 'a', org: 'b' }, to: { agent: 'c', org: 'd' }, p: {} }))
    await inbox.append([{ json, peer: 'peer', route: 'direct', receivedAt: 0 }, { json, peer: 'peer', route: 'direct', receivedAt: 1 }]).stored
    await db.close()
    const listed = await sandbox.call(['inbox', '--data-dir', dir])
    const follow = await sandbox.startLocal(['inbox', '--follow', '--after', '1', '--data-dir', dir])
    const line = await follow.nextLine(30_000)
    await follow.stop()
    expect(line).toMatch(/^#2 1970-01-01T00:00:00\.001Z query from a@b /)
    expect(listed.stdout.split('\n')[1]).toBe(line)
  })

  it('molt id on a relay\'s data dir says a node without an API holds it, not "Not running"', async () => {
    const dir = await sandbox.dir()
    const relay = await sandbox.startLocal(['relay', '--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--stats-interval', '0', '--drain-timeout', '0'])
    await relay.waitForJson(v => v.event === 'listening', 60_000)
    try {
      const text = await sandbox.call(['id', '--data-dir', dir])
      expect(text.code).toBe(0)
      expect(text.stdout).toContain(`A molt node (pid ${process.pid}) holds this data dir without a local API: a molt relay`)
      expect(text.stdout).not.toContain('Not running')
      const json = JSON.parse((await sandbox.call(['id', '--json', '--data-dir', dir])).stdout)
      expect(json).toMatchObject({ running: false, heldBy: process.pid, addresses: [] })
      // the commands that need an agent's API say what a relay is, rather than only "stop it"
      const inbox = await sandbox.call(['inbox', '--data-dir', dir])
      expect(inbox.code).toBe(1)
      expect(inbox.stderr).toMatch(/does not answer: a molt relay serves none \(point --data-dir or MOLT_HOME at an agent's data dir\)/)
    } finally {
      await relay.stop()
    }
    // once it stopped, the data dir is free again
    expect((await sandbox.call(['id', '--data-dir', dir])).stdout).toContain('Not running (start it with `molt agent`)')
  })
})
