import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { NatNetwork, Driver, MOLT_CLI, assertTopologyTools, sweepStale, startMolt, exited, type MoltProcess, type NsName } from './net.js'

/**
 * The set-up and teardown the NAT suites share (nat.test.ts, reach.test.ts):
 * the topology of one run with a driver in each LAN, the molt processes
 * started in it by name (so a test can restart one with the same namespace,
 * args and data dir, hence the same PeerId and port), the processes that
 * must stay up, and the teardown that kills everything, removes the
 * namespaces and data dirs, and reports any namespace left behind.
 */
export class NatSuite {
  readonly net: NatNetwork
  readonly procs: Record<string, MoltProcess> = {}
  readonly drivers: Partial<Record<NsName, Driver>> = {}
  /** Processes that should be running: one that exits on its own fails the test it happened in */
  readonly expectedUp = new Set<string>()
  private readonly specs = new Map<string, { ns: NsName, args: string[] }>()

  constructor (readonly root: { dir: string, remove: () => Promise<void> }, private readonly options: { env?: Record<string, string>, startTimeoutMs?: number } = {}) {
    this.net = new NatNetwork(root.dir)
  }

  /** Sweep what killed runs left, build the topology, start the LAN drivers; resolves to the ms the topology took */
  async up (): Promise<number> {
    await access(MOLT_CLI).catch(() => { throw new Error(`${MOLT_CLI} is missing: run \`npm run build\` first`) })
    assertTopologyTools()
    const swept = sweepStale()
    if (swept.length > 0) console.log(`removed namespaces left by killed runs: ${swept.join(', ')}`)
    const started = performance.now()
    await this.net.up()
    const topologyMs = Math.round(performance.now() - started)
    this.drivers.la = Driver.start(this.net, 'la', 'driver lanA')
    this.drivers.lb = Driver.start(this.net, 'lb', 'driver lanB')
    return topologyMs
  }

  /** Start `molt <args>` as `name` in `ns`, data dir `<root>/<name>`, and expect it to stay up */
  async launch (name: string, ns: NsName, args: string[]): Promise<MoltProcess> {
    const p = await startMolt(this.net, ns, name, join(this.root.dir, name.toLowerCase()), args, this.options.env, this.options.startTimeoutMs)
    this.procs[name] = p
    this.specs.set(name, { ns, args })
    this.expectedUp.add(name)
    return p
  }

  /** Start a process again: same namespace, args and data dir (so the same PeerId and port) */
  async restart (name: string): Promise<MoltProcess> {
    const spec = this.specs.get(name)
    if (spec == null) throw new Error(`${name} was never launched`)
    return this.launch(name, spec.ns, spec.args)
  }

  /** The processes expected up that exited on their own (no longer expected), and a report with their stderr */
  takeDied (): { names: string[], report: string } {
    const names = [...this.expectedUp].filter(name => exited(this.procs[name]))
    for (const name of names) this.expectedUp.delete(name)
    const report = names.map(name => {
      const { proc } = this.procs[name]
      return `${name} exited on its own (${String(proc.child.exitCode ?? proc.child.signalCode)}); stderr tail:\n${proc.stderr.slice(-2500)}`
    }).join('\n')
    return { names, report }
  }

  /** The tail of every process's stderr, for a failure message */
  logs (): string {
    return Object.entries(this.procs).map(([name, p]) => `--- ${name} stderr (tail)\n${p.proc.stderr.slice(-3000)}`).join('\n')
  }

  /** Close the drivers, kill every process, remove the namespaces and data dirs; resolves to the namespaces left behind */
  async down (): Promise<string[]> {
    for (const driver of Object.values(this.drivers)) driver?.close()
    let failure: unknown
    try {
      await this.net.down()
    } catch (err) {
      failure = err
    }
    await this.root.remove()
    if (failure != null) throw failure
    return this.net.existing()
  }
}
