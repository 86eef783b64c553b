// A module resolution hook for a child process (`node --import <this file>`):
// it writes the URL of every file module the process resolves to stderr, one
// `module-trace <url>` line each, so a test can see what a command loads.
// registerHooks runs the hook on the main thread, so every line is written
// before the process exits (hooks from register() run on a worker thread,
// whose last writes can be lost at exit).
import { registerHooks } from 'node:module'

registerHooks({
  resolve (specifier, context, next) {
    const resolved = next(specifier, context)
    if (resolved.url.startsWith('file:')) process.stderr.write(`module-trace ${resolved.url}\n`)
    return resolved
  }
})
