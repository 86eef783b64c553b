/** Baseline protocols the bench peer serves beside molt, on the same libp2p node */
export const RAW_SINK_PROTOCOL = '/molt-bench/sink/1.0.0'
export const RAW_ECHO_PROTOCOL = '/molt-bench/echo/1.0.0'
/** The echo answered on the next macrotask, as an asynchronous handler answers: Yamux's window update for the request leaves first */
export const RAW_LATE_ECHO_PROTOCOL = '/molt-bench/echo-late/1.0.0'

/** Payload size of every benchmark message */
export const MESSAGE_BYTES = 1024
