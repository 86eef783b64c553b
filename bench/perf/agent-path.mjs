// CPU per request/response exchange of the agent path, and a `perf` profile of both processes (issue #19).
//   npm run build && WARMUP=3000 node --perf-basic-prof bench/perf/agent-path.mjs $PWD 8000 /tmp/out
//   perf script -i /tmp/out/perf.data -F comm,pid,tid,ip,sym,dso | node bench/perf/categories.mjs 2000 8000
// SDK requester (this process) → `molt agent --echo` (child, --perf-basic-prof); `perf record -F 2000 -g` of both
// over the measured window only. Without an output dir: no perf, the CPU figures only (process.cpuUsage, /proc).
// <tree>: a built checkout (its dist/), so two commits can be compared alternately.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
const [tree, n, out] = [process.argv[2], Number(process.argv[3] ?? 3000), process.argv[4]]
const { createMoltNode } = await import(tree + '/dist/src/index.js')
const { multiaddr } = await import(tree + '/node_modules/@multiformats/multiaddr/dist/src/index.js')
const { moltRequests } = await import(tree + '/dist/bench/speak.js')
const { cpuDuring } = await import(tree + '/dist/bench/cpu.js')
const agentDir = await mkdtemp(join(tmpdir(), 'ap-agent-'))
const dataDir = await mkdtemp(join(tmpdir(), 'ap-req-'))
const child = spawn(process.execPath, [...(out ? ['--perf-basic-prof'] : []), join(tree, 'dist/src/cli/main.js'), 'agent', '--echo', '--no-mdns', '--data-dir', agentDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'inherit'] })
let node
try {
  const address = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => { if (line.includes('"listening"')) { const e = JSON.parse(line); if (e.addresses?.[0]) resolve(e.addresses[0]) } })
    child.once('exit', (c) => reject(new Error('agent exited ' + c)))
  })
  node = await createMoltNode({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatInterval: 0, libp2p: { connectionManager: { allow: ['/ip4/127.0.0.1'] } } })
  const peer = await node.resolvePeer(multiaddr(address))
  await moltRequests(node, peer, Number(process.env.WARMUP ?? 300))
  let perf
  if (out) {
    perf = spawn('perf', ['record', '-F', '2000', '-g', '-p', `${child.pid},${process.pid}`, '-o', join(out, 'perf.data')], { stdio: 'ignore' })
    await new Promise(r => setTimeout(r, 700))
  }
  const inbox = () => node.libp2p.services.moltStore.inbox.writes
  const speakStats = () => node.libp2p.services.speak.stats()
  const w0 = inbox(), s0 = speakStats()
  const m = await cpuDuring({ agent: child.pid }, async () => moltRequests(node, peer, n))
  if (perf) { perf.kill('SIGINT'); await new Promise(r => perf.once('exit', r)) }
  const s = [...m.result].sort((a, b) => a - b)
  console.log(JSON.stringify({ p50: s[Math.floor(s.length / 2)], p99: s[Math.floor(s.length * 0.99)], requesterUs: m.cpuMs.self * 1000 / n, agentUs: m.cpuMs.agent * 1000 / n, inboxWritesPerEx: (inbox() - w0) / n, streamWritesPerEx: (speakStats().writes - s0.writes) / n, agentPid: child.pid, selfPid: process.pid }))
} finally {
  await node?.stop().catch(() => {})
  child.kill('SIGTERM'); await new Promise(r => child.exitCode != null ? r() : child.once('exit', r))
  await rm(agentDir, { recursive: true, force: true }); await rm(dataDir, { recursive: true, force: true })
}
