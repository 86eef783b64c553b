export { relayClient, type RelayClient, type RelayClientInit, type RelayStatus } from './relay-client.js'
