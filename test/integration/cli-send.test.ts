import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { CLI, CliSandbox, RunningCli, type LocalAgent } from '../support/cli.js'

/**
 * molt send's exit codes and receipts, with and without a running agent
 * (issues #14.5 and #23.3): 0 only when delivered or stored, 75 when queued
 * (and it says where the message waits and what retries it), the signed
 * receipt printed when it arrives, or how to read it later (molt receipt).
 */
const sandbox = new CliSandbox()
/** answers query/task/tool with an echo */
let echo: LocalAgent
/** a sender agent: sends through its API */
let sender: LocalAgent
let echoAddress: string
/** A PeerId no process holds, at a port nobody listens on */
const NOBODY = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const UNREACHABLE = `/ip4/127.0.0.1/tcp/1/p2p/${NOBODY}`
/** Bound on a process's start: a loaded shared machine takes seconds */
const START_MS = 60_000
const CHUNK = '{"action":"chunk","stream_id":"cli-send","seq":0}'

beforeAll(async () => {
  const [echoDir, senderDir] = await Promise.all([sandbox.dir(), sandbox.dir()])
  // `molt agent` through the CLI's main() in this process: what is tested is what molt send says and exits with
  ;[echo, sender] = await Promise.all([sandbox.localAgent(echoDir, ['--echo']), sandbox.localAgent(senderDir)])
  echoAddress = echo.listening.addresses[0]
}, 2 * START_MS)

afterAll(async () => {
  await sandbox.cleanup()
})

describe('molt send exit codes', { timeout: 120_000 }, () => {
  it('documents every exit code in --help', async () => {
    const { code, stdout } = await sandbox.call(['send', '--help'])
    expect(code).toBe(0)
    for (const line of [/^ {2}0 +delivered, stored, or the reply arrived/m, /^ {2}1 +the reply is an `error`/m, /^ {2}2 +bad command line/m, /^ {2}75 +queued/m, /^ {2}130 +interrupted/m]) {
      expect(stdout).toMatch(line)
    }
    expect(stdout).toContain('--relay <multiaddr>')
    expect(stdout).toContain('--bootstrap <multiaddr>')
  })

  it('without an agent: queued exits 75 and says the outbox of this data dir waits for the next molt agent', async () => {
    const dir = await sandbox.dir()
    const human = await sandbox.call(['send', UNREACHABLE, '--op', 'stream', '--payload', CHUNK, '--data-dir', dir])
    expect(human.code).toBe(75)
    expect(human.stdout).toMatch(new RegExp(`^queued stream [0-9a-f-]{36} to ${NOBODY} in the outbox of ${dir} `))
    expect(human.stderr).toContain(`no agent is running for ${dir}`)
    expect(human.stderr).toContain(`\`molt agent --data-dir ${dir}\``)
    const json = await sandbox.call(['send', UNREACHABLE, '--op', 'stream', '--payload', CHUNK, '--json', '--data-dir', dir])
    expect(json.code).toBe(75)
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'queued', peer: NOBODY, outbox: { dataDir: dir, retriedBy: 'next-agent' } })
    // both wait in that data dir's outbox
    const listed = JSON.parse((await sandbox.call(['outbox', '--json', '--data-dir', dir])).stdout)
    expect(listed.pending.map((e: any) => e.peer)).toEqual([NOBODY, NOBODY])
  })

  it('through a running agent: queued exits 75 too and names the agent that retries it', async () => {
    const { code, stdout, stderr } = await sandbox.call(['send', UNREACHABLE, '--op', 'stream', '--payload', CHUNK, '--json', '--data-dir', sender.dataDir])
    expect(code).toBe(75)
    const result = JSON.parse(stdout)
    expect(result).toMatchObject({ status: 'queued', outbox: { dataDir: sender.dataDir, retriedBy: 'agent', agentPid: sender.pid } })
    expect(stderr).toBe('')
    const human = await sandbox.call(['send', UNREACHABLE, '--op', 'stream', '--payload', CHUNK, '--data-dir', sender.dataDir])
    expect(human.code).toBe(75)
    expect(human.stderr).toContain(`the agent running for ${sender.dataDir} (pid ${sender.pid}) retries it until `)
  })

  it('delivered exits 0, with and without a running agent', async () => {
    const viaAgent = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', CHUNK, '--json', '--data-dir', sender.dataDir])
    expect(viaAgent.code).toBe(0)
    expect(JSON.parse(viaAgent.stdout)).toMatchObject({ status: 'delivered', route: 'direct' })
    const oneOff = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', CHUNK, '--json', '--data-dir', await sandbox.dir()])
    expect(oneOff.code).toBe(0)
    expect(JSON.parse(oneOff.stdout)).toMatchObject({ status: 'delivered' })
  })

  it('without an agent: a bare PeerId is reached through a --bootstrap peer (queued without it)', async () => {
    const dir = await sandbox.dir()
    const without = await sandbox.call(['send', echo.listening.peerId, '--op', 'stream', '--payload', CHUNK, '--json', '--data-dir', dir])
    expect(without.code).toBe(75)
    const withFlag = await sandbox.call(['send', echo.listening.peerId, '--op', 'stream', '--payload', CHUNK, '--bootstrap', echoAddress, '--json', '--data-dir', dir])
    expect(withFlag.code).toBe(0)
    expect(JSON.parse(withFlag.stdout)).toMatchObject({ status: 'delivered', peer: echo.listening.peerId })
    // the message queued by the first run went too: the short-lived node flushes what waits for that peer before it exits
    const listed = JSON.parse((await sandbox.call(['outbox', '--json', '--data-dir', dir])).stdout)
    expect(listed.pending).toEqual([])
  })

  it('refuses a malformed --relay / --bootstrap with exit 2', async () => {
    const relay = await sandbox.call(['send', echoAddress, '--op', 'stream', '--relay', '/ip4/127.0.0.1/tcp/1', '--data-dir', await sandbox.dir()])
    expect(relay.code).toBe(2)
    expect(relay.stderr).toContain('--relay /ip4/127.0.0.1/tcp/1 must end in /p2p/<PeerId>')
    const bootstrap = await sandbox.call(['send', echoAddress, '--op', 'stream', '--bootstrap', 'nope', '--data-dir', await sandbox.dir()])
    expect(bootstrap.code).toBe(2)
  })
})

describe('molt send --receipt', { timeout: 120_000 }, () => {
  it('prints the signed receipt once it arrives, through a running agent; --json carries it', async () => {
    const json = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', CHUNK, '--receipt', '--json', '--data-dir', sender.dataDir])
    expect(json.code).toBe(0)
    const result = JSON.parse(json.stdout)
    expect(result.status).toBe('delivered')
    expect(result.receipt).toMatchObject({ id: result.id, peer: echo.listening.peerId, digest: expect.stringMatching(/^[0-9a-f]{64}$/) })
    expect(result.receipt.message.sig).toEqual(expect.any(String))
    expect(result.receipt.message.re).toBe(result.id)

    const human = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', CHUNK, '--receipt', '--data-dir', sender.dataDir])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`^delivered stream ([0-9a-f-]{36}) .*\\nreceipt for \\1: ${echo.listening.peerId} received it at `))

    // and molt receipt reads it again later
    const again = await sandbox.call(['receipt', result.id, '--json', '--data-dir', sender.dataDir])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout).receipt).toEqual(result.receipt)
  })

  it('prints the receipt from a short-lived node too', async () => {
    const dir = await sandbox.dir()
    const { code, stdout } = await sandbox.call(['send', echoAddress, '--op', 'stream', '--payload', CHUNK, '--receipt', '--json', '--data-dir', dir])
    expect(code).toBe(0)
    const result = JSON.parse(stdout)
    expect(result.receipt).toMatchObject({ id: result.id, peer: echo.listening.peerId })
    // kept in the data dir: molt receipt finds it without an agent
    const again = await sandbox.call(['receipt', result.id, '--json', '--data-dir', dir])
    expect(again.code).toBe(0)
    expect(JSON.parse(again.stdout).receipt.digest).toBe(result.receipt.digest)
  })

  it('says the receipt comes later and how to read it when the message is only queued', async () => {
    const dir = await sandbox.dir()
    const human = await sandbox.call(['send', UNREACHABLE, '--op', 'stream', '--payload', CHUNK, '--receipt', '--data-dir', dir])
    expect(human.code).toBe(75)
    const id = /^queued stream ([0-9a-f-]{36})/.exec(human.stdout)?.[1]
    expect(id).toBeDefined()
    expect(human.stderr).toContain(`the receipt comes when ${NOBODY} gets the message: read it then with molt receipt ${id}`)
    const json = await sandbox.call(['send', UNREACHABLE, '--op', 'stream', '--payload', CHUNK, '--receipt', '--json', '--data-dir', dir])
    expect(JSON.parse(json.stdout).receipt).toBeNull()
    // not there yet: molt receipt exits 75 (try later)
    const missing = await sandbox.call(['receipt', id!, '--json', '--data-dir', dir])
    expect(missing.code).toBe(75)
    expect(JSON.parse(missing.stdout).error.code).toBe('E_TIMEOUT')
  })

  it('refuses --receipt on a request that waits for its reply (exit 2)', async () => {
    const { code, stderr } = await sandbox.call(['send', echoAddress, '--op', 'query', '--payload', '{"domain":"x"}', '--receipt', '--data-dir', sender.dataDir])
    expect(code).toBe(2)
    expect(stderr).toContain('add --no-wait')
  })
})

describe('the README walk-through: copy a PeerId, send to it (one relay on 127.0.0.1)', { timeout: 300_000 }, () => {
  const started: RunningCli[] = []
  afterAll(async () => {
    await Promise.all(started.map(async p => p.stop('SIGKILL')))
  })

  /** `molt <args>` with DEBUG=molt:routing-record, so the test can wait for the record to be published */
  async function startLogged (args: string[]): Promise<RunningCli> {
    const env: NodeJS.ProcessEnv = { ...process.env, MOLT_HOME: await sandbox.dir(), DEBUG: 'molt:routing-record' }
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const cli = new RunningCli(child)
    started.push(cli)
    return cli
  }

  it('reaches an agent by PeerId through the relay both know (respond, exit 0), and stores for it once it is offline (exit 0)', async () => {
    const relay = await sandbox.start(['relay', '--listen', '/ip4/127.0.0.1/tcp/0', '--json', '--data-dir', await sandbox.dir()])
    const relayAddress = JSON.parse(await relay.nextLine(START_MS)).addresses[0]
    const bDir = await sandbox.dir()
    const b = await startLogged(['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--echo', '--relay', relayAddress, '--json', '--data-dir', bDir])
    const bId = JSON.parse(await b.nextLine(START_MS)).peerId
    // B's signed routing record is in the DHT (the relay is a DHT server)
    await new Promise<void>((resolve, reject) => {
      const check = (): void => { if (/published routing record seq \d+ to [1-9]/.test(b.stderr)) resolve() }
      b.child.stderr!.on('data', check)
      b.exited.then(() => { reject(new Error(`B exited: ${b.stderr}`)) }, reject)
      check()
    })

    const senderDir = await sandbox.dir()
    const query = await sandbox.call(['send', bId, '--op', 'query', '--payload', '{"domain":"weather"}', '--relay', relayAddress, '--json', '--data-dir', senderDir], 60_000)
    expect(query.code, query.stderr).toBe(0)
    expect(JSON.parse(query.stdout)).toMatchObject({ op: 'respond', p: { data: { echo: { domain: 'weather' } } } })

    await b.stop('SIGTERM')
    const stored = await sandbox.call(['send', bId, '--op', 'stream', '--payload', CHUNK, '--relay', relayAddress, '--json', '--data-dir', senderDir], 60_000)
    expect(stored.code, stored.stderr).toBe(0)
    expect(JSON.parse(stored.stdout)).toMatchObject({ status: 'stored', peer: bId })
    await relay.stop()
  })
})
