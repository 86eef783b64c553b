/** Baseline protocols the bench peer serves beside molt, on the same libp2p node */
export const RAW_SINK_PROTOCOL = '/molt-bench/sink/1.0.0'
export const RAW_ECHO_PROTOCOL = '/molt-bench/echo/1.0.0'

/** Payload size of every benchmark message */
export const MESSAGE_BYTES = 1024
