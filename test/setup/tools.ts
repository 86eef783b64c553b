/**
 * vitest globalSetup: before any suite runs, install the system tools the
 * suites need (test/support/tools.ts lists them) when some are missing and
 * this process can (root, with apt-get) — once: the next run finds them.
 * Otherwise it prints one line; each suite that needs a missing tool is then
 * skipped with one line saying what is missing (a failure under CI=true).
 */
import { spawnSync } from 'node:child_process'
import { TOOLS, missingTools, describeMissing, inCi, type Tool } from '../support/tools.js'

function canInstall (): boolean {
  return process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0
}

function apt (args: string[]): boolean {
  const run = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  if (run.status !== 0) console.warn(`test set-up: apt-get ${args[0]} failed (${run.error?.message ?? `exit ${String(run.status)}`}): ${run.stderr?.trim().split('\n').at(-1) ?? ''}`)
  return run.status === 0
}

export default function setup (): void {
  const all = Object.keys(TOOLS) as Tool[]
  let missing = missingTools(all)
  const packages = [...new Set(missing.flatMap(tool => TOOLS[tool].packages))]
  if (packages.length > 0 && canInstall()) {
    console.log(`test set-up: installing ${packages.join(' ')} (missing ${missing.join(', ')}; once)`)
    if (apt(['update', '-qq'])) apt(['install', '-y', '-qq', '--no-install-recommends', ...packages])
    // checked afresh: missingTools() caches per process, and this is a new answer
    missing = all.filter(tool => !TOOLS[tool].present())
  }
  if (missing.length > 0) {
    console.warn(`test set-up: ${describeMissing(missing)}; suites that need them are ${inCi() ? 'failed (CI=true)' : 'skipped'}`)
  }
}
