export { AgentMetrics, sendFailureReason, type AgentMetricsSource, type MetricsOptions } from './agent.js'
export { createRelayMetrics } from './relay.js'
export { startMetricsServer, type MetricsServer, type MetricsServerOptions, type HttpRoutes } from './server.js'
