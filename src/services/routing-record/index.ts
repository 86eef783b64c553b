export { routingRecord, publishable, type RoutingRecordService, type RoutingRecordInit, type RoutingRecordComponents } from './routing-record-service.js'
export { routeKey, peerOfRouteKey, signRouteRecord, encodeRouteRecord, decodeRouteRecord, parseRouteRecord, validateRouteRecord, selectRouteRecord, type RouteRecord, type MailboxRelay, type UnsignedRouteRecord } from './record.js'
export * from './errors.js'
export { NAMESPACE as ROUTE_NAMESPACE } from './constants.js'
