// A module loader hook for a child process (`node --import <this file>`): it
// writes the URL of every file module the process resolves to stderr, one
// `module-trace <url>` line each, so a test can see what a command loads.
import { register } from 'node:module'

if (process.env.MOLT_MODULE_TRACE_HOOK === undefined) {
  process.env.MOLT_MODULE_TRACE_HOOK = '1'
  register(import.meta.url)
}

export async function resolve (specifier, context, next) {
  const resolved = await next(specifier, context)
  if (resolved.url.startsWith('file:')) process.stderr.write(`module-trace ${resolved.url}\n`)
  return resolved
}
