/**
 * Oldest Node.js major molt runs on: libp2p v3 and its dependencies use
 * Node 22 APIs (Promise.withResolvers, …). package.json `engines` says the same.
 */
export const MIN_NODE_MAJOR = 22

/**
 * Why this Node cannot run molt, or undefined when it can. On an older Node
 * the CLI would start and then fail deep inside libp2p ("Promise.withResolvers
 * is not a function"); this says what to do instead.
 */
export function unsupportedNode (version: string): string | undefined {
  const major = Number(version.split('.')[0])
  if (!Number.isInteger(major) || major >= MIN_NODE_MAJOR) return undefined
  return `molt needs Node.js ${MIN_NODE_MAJOR} or later; this is Node.js ${version}. ` +
    `Install Node.js ${MIN_NODE_MAJOR}+, or from a checkout run \`npm run molt -- <command>\` (npm scripts use the pinned node@${MIN_NODE_MAJOR} devDependency)`
}
