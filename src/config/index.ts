export { resolveDataDir } from './data-dir.js'
export { loadConfig, saveConfig, parseConfig, defaultConfig, updateConfigFile, saveAgentSettings, type MoltConfig, type AgentProfile, type AgentSettings } from './config.js'
export { pinListenPorts } from './listen.js'
export { acquireLock, readLock, findRunningNode, NodeLock, type LockInfo } from './lock.js'
