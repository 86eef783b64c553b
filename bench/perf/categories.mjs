// perf script -F comm,pid,tid,ip,sym,dso | node categories.mjs <freq> <exchanges> : CPU µs per exchange per process, by category
// (each sample goes to its innermost recognisable frame; kernel samples by syscall; other threads by kind). See agent-path.mjs.
import { createInterface } from 'node:readline'
const F = Number(process.argv[2]), N = Number(process.argv[3]); const us = 1e6 / F / N
const KERNEL = [
  ['kernel: socket write (TCP send, loopback delivery)', /sys_write|sys_writev|sys_sendmsg|sys_sendto/],
  ['kernel: socket read', /sys_read|sys_readv|sys_recvmsg|sys_recvfrom/],
  ['kernel: epoll wait', /epoll/],
  ['kernel: futex (thread-pool hand-off)', /futex/],
  ['kernel: fs (LevelDB log/fsync)', /sys_fdatasync|sys_fsync|sys_pwrite|sys_openat|sys_close|sys_fstat|statx/],
  ['kernel: softirq/scheduler/other', /./]
]
const USER = [
  ['GC (main thread)', /Scavenger|Heap::|MarkCompact|ConcurrentMarking|MinorMark|Sweeper|GCTracer|IncrementalMarking/],
  ['throw+catch of RangeError (length-prefixed decoder, per socket read)', /ErrorUtils|CaptureStackTrace|ErrorConstructor|Isolate::Throw|UnwindAndFindHandler|OptimizedFrame::Summarize|TranslatedState|ErrorStackData|ErrorUtils/],
  ['Noise ChaCha20-Poly1305 (wasm)', /wasm-function|chacha20poly1305/],
  ['Noise framing/encrypt/decrypt JS', /libp2p-noise/],
  ['yamux', /libp2p-yamux/],
  ['LevelDB hand-off (classic-level, abstract-level, molt inbox)', /classic-level|abstract-level|dist\/src\/inbox\//],
  ['molt log line / CLI output', /dist\/src\/cli\/|dist\/src\/logging\//],
  ['metrics (prom-client, prometheus-metrics, molt metrics)', /prom-client|prometheus-metrics|dist\/src\/metrics\//],
  ['molt speak: frames, JSON parse, validation, replay', /dist\/src\/services\/speak\/|dist\/src\/moltspeak\/|dist\/src\/json\//],
  ['molt node: messenger, delivery, pipeline, handlers, trust', /dist\/src\/node\/|dist\/src\/delivery\/|dist\/src\/services\/trust|dist\/src\/routing|dist\/src\/node\.js|dist\/src\/discovery|dist\/src\/cli\/commands/],
  ['bench loop', /dist\/bench\//],
  ['libp2p message streams (@libp2p/utils, uint8arraylist, tcp, events)', /@libp2p\/utils|uint8arraylist|main-event|@libp2p\/tcp|libp2p\/dist|@libp2p\/interface|uint8arrays|uint8-varint/],
  ['node net/streams (JS)', /node:internal\/stream|node:net|node:internal\/streams|node:events|node:buffer|node:internal\/event_target/],
  ['node event loop: timers, microtasks, nextTick', /task_queues|timers|RunMicrotasks|runMicrotasks|uv_run|uv__/],
  ['other user-space (V8 builtins/runtime)', /./]
]
const procs = new Map()
let cur = null
function flush () {
  if (cur == null) return
  const { pid, tid, comm, frames } = cur; cur = null
  let p = procs.get(pid); if (!p) procs.set(pid, p = { cats: new Map(), all: 0 })
  p.all++
  let cat
  if (tid !== pid) cat = comm === 'libuv-worker' ? 'thread pool (LevelDB write)' : 'V8 helper threads (JIT compile, concurrent GC)'
  else if (frames[0]?.startsWith('[k]')) { const s = frames.join('\n'); cat = KERNEL.find(([, re]) => re.test(s))[0] }
  else {
    // innermost frame (leaf upward) that matches a category
    outer: for (const f of frames) for (const [name, re] of USER.slice(0, -1)) if (re.test(f)) { cat = name; break outer }
    cat ??= USER.at(-1)[0]
  }
  p.cats.set(cat, (p.cats.get(cat) ?? 0) + 1)
}
for await (const line of createInterface({ input: process.stdin })) {
  if (line === '') { flush(); continue }
  if (!/^\s/.test(line)) { flush(); const m = /^(\S+)\s+(\d+)\/(\d+)/.exec(line.trim()); if (m) cur = { comm: m[1], pid: +m[2], tid: +m[3], frames: [] }; continue }
  const m = /^\s*[0-9a-f]+ (.*?) \((.*)\)$/.exec(line); if (cur && m) cur.frames.push(m[2].includes('kernel') ? '[k] ' + m[1] : m[1])
}
flush()
for (const [pid, p] of [...procs].sort((a, b) => b[1].all - a[1].all)) {
  if (p.all * us < 20) continue
  console.log(`== pid ${pid}: ${(p.all * us).toFixed(0)} µs/exchange`)
  for (const [k, v] of [...p.cats].sort((a, b) => b[1] - a[1])) console.log(`  ${(v * us).toFixed(1).padStart(6)} µs  ${k}`)
}
