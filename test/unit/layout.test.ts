/**
 * Layout rules checked on the source tree (issue #18 "Done when"):
 * no import cycles in src/ (type-only imports and re-exports count: they tie
 * the files together for a reader and for the compiler), and no source file
 * longer than MAX_LINES unless its first lines say why.
 */
import { describe, it, expect } from 'vitest'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const ROOT = resolve(import.meta.dirname, '../..')
const SRC = join(ROOT, 'src')

/** Longest source file without a reason at its top */
const MAX_LINES = 400
/** A file over MAX_LINES says why in a comment among its first lines, e.g. `// Over 400 lines: one state machine, split it and …` */
const REASON_LINES = 10
const REASON = /^\s*(\/\/|\/\*|\*).*\b(over|above|longer than) 400 lines\b/i

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** The src file a relative specifier names (`./x.js` → x.ts, `./dir/index.js` …), or undefined for a package */
function resolveImport (from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined
  const base = resolve(dirname(from), specifier)
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), `${base}.ts`, join(base, 'index.ts')]
  return candidates.find(path => path.startsWith(SRC) && existsSync(path))
}

/**
 * Every file's imports: `import`, `import type`, `export … from` and
 * `import()` (the TypeScript compiler's own pre-processor reads them all,
 * comments and strings aside)
 */
function importGraph (files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const targets = importedFiles.map(i => resolveImport(file, i.fileName)).filter((path): path is string => path !== undefined)
    graph.set(file, [...new Set(targets)])
  }
  return graph
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan) */
function cycles (graph: Map<string, string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (node: string): void => {
    index.set(node, counter)
    low.set(node, counter++)
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node)!, low.get(next)!))
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!))
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== node)
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort())
    }
  }
  for (const node of graph.keys()) if (!index.has(node)) visit(node)
  return found
}

/** One path around a component, for the failure message: a → b → … → a */
function loopThrough (graph: Map<string, string[]>, component: string[]): string {
  const members = new Set(component)
  const start = component[0]
  // breadth-first from start's successors back to start, inside the component
  const previous = new Map<string, string>()
  const queue = (graph.get(start) ?? []).filter(n => members.has(n))
  for (const n of queue) previous.set(n, start)
  while (queue.length > 0 && !previous.has(start)) {
    const node = queue.shift()!
    for (const next of graph.get(node) ?? []) {
      if (!members.has(next) || previous.has(next)) continue
      previous.set(next, node)
      queue.push(next)
    }
  }
  const path = [start]
  for (let node = previous.get(start); node !== undefined && node !== start; node = previous.get(node)) path.unshift(node)
  path.unshift(start)
  return path.map(p => relative(ROOT, p)).join(' → ')
}

describe('source layout', () => {
  const files = sourceFiles(SRC)
  const graph = importGraph(files)

  it('reads the imports the compiler sees (a check of the checker)', () => {
    // known edges of each kind: a value import, a type-only import, a re-export
    const edge = (from: string, to: string): boolean => graph.get(join(SRC, from))?.includes(join(SRC, to)) === true
    expect(edge('services/mailbox/server.ts', 'services/mailbox/session.ts')).toBe(true)
    expect(edge('config/schema.ts', 'services/mailbox/limits.ts')).toBe(true) // import type
    expect(edge('relay/constants.ts', 'config/relay-limits.ts')).toBe(true) // export … from
    // and the cycle finder finds a planted cycle, type-only included
    const planted = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])
    expect(cycles(planted)).toEqual([['a', 'b', 'c']])
  })

  it('has no import cycles in src/ (type-only imports included)', () => {
    const found = cycles(graph).map(component => loopThrough(graph, component))
    expect(found, `import cycles:\n${found.join('\n')}`).toEqual([])
  })

  it(`has no file over ${MAX_LINES} lines without a reason in its first lines`, () => {
    const offenders = files.flatMap(file => {
      const lines = readFileSync(file, 'utf8').split('\n')
      const count = lines.at(-1) === '' ? lines.length - 1 : lines.length
      if (count <= MAX_LINES) return []
      if (lines.slice(0, REASON_LINES).some(line => REASON.test(line))) return []
      return [`${relative(ROOT, file)} (${count} lines)`]
    })
    expect(offenders, `files over ${MAX_LINES} lines with no reason at the top:\n${offenders.join('\n')}`).toEqual([])
  })
})
