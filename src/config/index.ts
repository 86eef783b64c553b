export { resolveDataDir } from './data-dir.js'
export { loadConfig, saveConfig, parseConfig, defaultConfig, type MoltConfig, type AgentProfile } from './config.js'
export { acquireLock, readLock, findRunningNode, NodeLock, type LockInfo } from './lock.js'
