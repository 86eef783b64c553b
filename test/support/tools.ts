import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

/**
 * The system tools some suites need beyond Node. `npm test` installs the
 * missing ones once before any suite runs (test/setup/tools.ts, a vitest
 * globalSetup: as root with apt-get). Where it could not, a suite that needs
 * one is skipped with one line saying what is missing and how to get it —
 * except under CI=true, where a missing tool fails the suite: CI never passes
 * by skipping.
 */
export type Tool = 'ip' | 'unshare' | 'setpriv' | 'iptables' | 'promtool' | 'chromium' | 'python3-nacl' | 'root'

interface ToolCheck {
  present: () => boolean
  /** Debian packages that provide it; none for `root` */
  packages: string[]
  /** How to get it, when apt cannot */
  hint: string
}

/** root's tools live in /usr/sbin, which a non-login PATH may lack */
const PATH = `/usr/local/sbin:/usr/sbin:/sbin:${process.env.PATH ?? ''}`
const command = (name: string): boolean => spawnSync('sh', ['-c', `command -v ${name}`], { env: { ...process.env, PATH }, stdio: 'ignore' }).status === 0

/** Debian's Python (the one apt's python3-nacl is for), not a pyenv shim first on PATH */
export const SYSTEM_PYTHON = '/usr/bin/python3'
/** Debian's Chromium; playwright-core never downloads a browser */
export const CHROMIUM = '/usr/bin/chromium'

export const TOOLS: Record<Tool, ToolCheck> = {
  ip: { present: () => command('ip'), packages: ['iproute2'], hint: 'apt-get install -y iproute2' },
  unshare: { present: () => command('unshare'), packages: ['util-linux'], hint: 'apt-get install -y util-linux' },
  setpriv: { present: () => command('setpriv'), packages: ['util-linux'], hint: 'apt-get install -y util-linux' },
  iptables: { present: () => command('iptables'), packages: ['iptables'], hint: 'apt-get install -y iptables' },
  promtool: { present: () => command('promtool'), packages: ['prometheus'], hint: 'apt-get install -y --no-install-recommends prometheus' },
  chromium: {
    present: () => { try { accessSync(CHROMIUM, constants.X_OK); return true } catch { return false } },
    packages: ['chromium'],
    hint: 'apt-get install -y --no-install-recommends chromium'
  },
  'python3-nacl': {
    present: () => spawnSync(SYSTEM_PYTHON, ['-c', 'import nacl.public, nacl.signing'], { stdio: 'ignore' }).status === 0,
    packages: ['python3', 'python3-nacl'],
    hint: 'apt-get install -y --no-install-recommends python3 python3-nacl'
  },
  root: { present: () => process.getuid?.() === 0, packages: [], hint: 'run the tests as root (network namespaces, iptables, mounts); CI does' }
}

const known = new Map<Tool, boolean>()

/** The tools of `tools` this machine lacks (each checked once per process) */
export function missingTools (tools: Tool[]): Tool[] {
  return tools.filter(tool => {
    if (!known.has(tool)) known.set(tool, TOOLS[tool].present())
    return known.get(tool) === false
  })
}

/** One line: what is missing and how to get it */
export function describeMissing (tools: Tool[]): string {
  const hints = [...new Set(tools.map(tool => TOOLS[tool].hint))]
  return `missing ${tools.join(', ')}: ${hints.join('; ')} (npm test installs them itself when run as root with apt-get)`
}

/** True under CI=true: a missing tool is then a failure, never a skip */
export const inCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1'

/**
 * For `describe.skipIf(skipWithout(...))`: true (after printing one line) when a
 * tool `suite` needs is missing. Under CI it throws instead, failing the file.
 */
export function skipWithout (suite: string, ...tools: Tool[]): boolean {
  const missing = missingTools(tools)
  if (missing.length === 0) return false
  const line = `${suite}: ${describeMissing(missing)}`
  if (inCi()) throw new Error(`CI=true and ${line}`)
  console.warn(`skipped ${line}`)
  return true
}
