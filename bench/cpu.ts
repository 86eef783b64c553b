/**
 * CPU time of processes over a measured window, for "CPU per exchange"
 * figures: steadier than latency on a shared machine, and what a
 * request/response costs each process whatever the scheduler did.
 */
import { readFileSync } from 'node:fs'

/** user + system CPU of `pid` so far, in ms (Linux /proc; NaN elsewhere) */
export function processCpuMs (pid: number): number {
  try {
    // fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10 // clock ticks of 10 ms (CLK_TCK 100)
  } catch {
    return NaN
  }
}

/** This process's user + system CPU so far, in ms (µs resolution) */
export function ownCpuMs (): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

/** CPU ms each of `pids` (and this process, as `self`) spent while `work` ran */
export async function cpuDuring<T> (pids: Record<string, number | undefined>, work: () => Promise<T>): Promise<{ result: T, cpuMs: Record<string, number> }> {
  const before: Record<string, number> = { self: ownCpuMs() }
  for (const [name, pid] of Object.entries(pids)) if (pid !== undefined) before[name] = processCpuMs(pid)
  const result = await work()
  const cpuMs: Record<string, number> = { self: ownCpuMs() - before.self }
  for (const [name, pid] of Object.entries(pids)) if (pid !== undefined) cpuMs[name] = processCpuMs(pid) - before[name]
  return { result, cpuMs }
}
