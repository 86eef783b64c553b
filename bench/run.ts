/**
 * `npm run bench`: every benchmark, each measured beside its baseline in the
 * same run; prints markdown tables and writes them to bench/results/latest.md.
 *   --quick            smaller runs (a smoke test)
 *   --only a,b         run only these sections: speak, api, relay, mailbox, discover, lan, trust, reach, hostile
 *   --json             print the raw figures as JSON
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { cpus, loadavg } from 'node:os'
import { runSpeakBench } from './speak.js'
import { runAgentBench } from './agent.js'
import { runDiscoverBench } from './discover.js'
import { runRelayPathBench, runRelayCapacityBench } from './relay.js'
import { runApiBench } from './api.js'
import { runMailboxBench } from './mailbox.js'
import { runTrustBench } from './trust.js'
import { runReachBench } from './reach.js'
import { runHostileBench } from './hostile.js'
import { fmt } from './stats.js'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (values.help) {
  process.stdout.write('usage: npm run bench [-- --quick] [-- --only speak,api,relay,mailbox,discover,lan,trust,reach,hostile] [-- --json]\n')
  process.exit(0)
}
const SECTIONS = ['speak', 'api', 'relay', 'mailbox', 'discover', 'lan', 'trust', 'reach', 'hostile']
const sections = new Set((values.only ?? SECTIONS.join(',')).split(',').map(s => s.trim()))
for (const s of sections) {
  if (!SECTIONS.includes(s)) {
    process.stderr.write(`unknown bench section: ${s} (${SECTIONS.join(', ')})\n`)
    process.exit(2)
  }
}
const log = (line: string): void => { process.stderr.write(line + '\n') }
const check = (ok: boolean): string => ok ? 'met' : '**missed**'
/** 1-minute load average: the shared machine's load changes the figures */
const load = (): string => loadavg()[0].toFixed(1)
const quick = values.quick
const out: string[] = [`Measured ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, \`npm run bench${quick ? ' -- --quick' : ''}\`.`]
const figures: Record<string, unknown> = {}

log(`molt benchmarks on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`)

if (sections.has('speak')) {
  log('speak: 1 KiB messages, two processes, one connection on 127.0.0.1')
  const speak = await runSpeakBench({ messages: quick ? 5_000 : 30_000, roundTrips: quick ? 500 : 3_000, rounds: quick ? 1 : 3, log })
  figures.speak = speak
  const ratioOne = speak.moltAcked / speak.rawOnePerSend
  const ratioCoalesced = speak.moltAcked / speak.rawCoalesced
  const ratioP99 = speak.moltRequest.p99 / speak.rawEcho.p99
  out.push('', '### Speak', '',
    '| 1 KiB messages, one connection | molt | raw js-libp2p | ratio | target |',
    '|---|---|---|---|---|',
    `| acknowledged throughput vs raw one-message-per-send | ${fmt(speak.moltAcked)} msg/s | ${fmt(speak.rawOnePerSend)} msg/s (unacknowledged) | ${fmt(ratioOne, 2)}× | ≥ 3× — ${check(ratioOne >= 3)} |`,
    `| acknowledged throughput vs raw coalesced (64/send) | ${fmt(speak.moltAcked)} msg/s | ${fmt(speak.rawCoalesced)} msg/s (unacknowledged) | ${fmt(ratioCoalesced, 2)}× | ≥ 0.7× — ${check(ratioCoalesced >= 0.7)} |`,
    `| request/response p50 | ${fmt(speak.moltRequest.p50, 3)} ms | ${fmt(speak.rawEcho.p50, 3)} ms (echo) | ${fmt(speak.moltRequest.p50 / speak.rawEcho.p50, 2)}× | — |`,
    `| request/response p99 | ${fmt(speak.moltRequest.p99, 3)} ms | ${fmt(speak.rawEcho.p99, 3)} ms (echo) | ${fmt(ratioP99, 2)}× | ≤ 1.5× — ${check(ratioP99 <= 1.5)} |`)

  log('speak: SDK → `molt agent --echo` (another process, API/metrics/logging on) beside NATS core through nats-server')
  const agent = await runAgentBench({ roundTrips: quick ? 500 : 3_000, messages: quick ? 5_000 : 30_000, warmup: quick ? 300 : 2_000, log })
  figures.agent = agent
  const { molt, nats, natsDurable } = agent
  const cpuSum = (cpu: Record<string, number>): string => `${fmt(Object.values(cpu).reduce((a, b) => a + b, 0))} µs (${Object.entries(cpu).map(([name, us]) => `${name} ${fmt(us)}`).join(' + ')})`
  const vs = (a: number, b: number | undefined, target?: number): string =>
    b === undefined ? '— | —' : `${fmt(a / b, 2)}× | ${target !== undefined ? `≤ ${target}× — ${check(a / b <= target)}` : '—'}`
  out.push('', '| 1 KiB, 127.0.0.1, two processes | molt: SDK → `molt agent --echo` | NATS core via nats-server (official `nats` client) | ratio | target |',
    '|---|---|---|---|---|',
    `| request/response p50, one at a time | ${fmt(molt.p50, 3)} ms | ${nats !== undefined ? `${fmt(nats.p50, 3)} ms request/reply` : 'nats-server not installed'} | ${vs(molt.p50, nats?.p50, 1)} |`,
    `| request/response p99 | ${fmt(molt.p99, 3)} ms | ${nats !== undefined ? `${fmt(nats.p99, 3)} ms` : '—'} | ${vs(molt.p99, nats?.p99, 1)} |`,
    `| throughput: molt acknowledged (inbox write) vs NATS publish → subscribe (no ack) | ${fmt(molt.acked)} msg/s | ${nats !== undefined ? `${fmt(nats.pubSub)} msg/s` : '—'} | ${nats !== undefined ? `${fmt(molt.acked / nats.pubSub, 2)}×` : '—'} | — |`,
    `| CPU per request/response exchange, every process | ${cpuSum(molt.cpu)} | ${nats !== undefined ? cpuSum(nats.cpu) : '—'} | ${nats !== undefined ? `${fmt(Object.values(molt.cpu).reduce((a, b) => a + b, 0) / Object.values(nats.cpu).reduce((a, b) => a + b, 0), 2)}×` : '—'} | — |`,
    ...(natsDurable !== undefined
      ? [`| durable baseline: request/response p50 / p99 vs NATS JetStream request → stored → reply → stored | ${fmt(molt.p50, 3)} / ${fmt(molt.p99, 3)} ms | ${fmt(natsDurable.p50, 3)} / ${fmt(natsDurable.p99, 3)} ms, CPU ${cpuSum(natsDurable.cpu)} | ${fmt(molt.p50 / natsDurable.p50, 2)}× / ${fmt(molt.p99 / natsDurable.p99, 2)}× | — |`]
      : []))
}

if (sections.has('api')) {
  log('api: the local HTTP API vs the SDK on the same node (send; inbox delivery by SDK, SSE, WebSocket, polling)')
  const api = await runApiBench({
    messages: quick ? 3_000 : 20_000,
    roundTrips: quick ? 300 : 3_000,
    rounds: quick ? 1 : 3,
    concurrency: 64,
    backlog: quick ? 3_000 : 20_000,
    log
  })
  figures.api = api
  const { send, floor, delivery } = api
  const sendRow = (label: string, name: keyof typeof send): string => {
    const d = send[name]
    const ratio = d.p50 / send.sdk.p50
    // the target is the API's overhead: the raw client leaves out a client library's own work
    const target = name === 'sdk' ? '—' : name === 'raw' ? `≤ 2× — ${check(ratio <= 2)}` : '(client library included)'
    return `| ${label} | ${fmt(d.throughput)} msg/s | ${fmt(d.p50, 3)} ms | ${fmt(d.p99, 3)} ms | ${fmt(ratio, 2)}× | ${target} |`
  }
  const floorRow = (label: string, name: keyof typeof floor): string =>
    `| ${label} | — | ${fmt(floor[name].p50, 3)} ms | ${fmt(floor[name].p99, 3)} ms | — | — |`
  const deliveryRow = (label: string, name: keyof typeof delivery): string => {
    const d = delivery[name]
    const ratio = d.p50 / delivery.sdk.p50
    const target = name === 'sdk' ? '—' : `≤ 2× — ${check(ratio <= 2)}`
    return `| ${label} | ${fmt(d.p50, 3)} ms | ${fmt(d.p99, 3)} ms | ${fmt(ratio, 2)}× | ${target} | ${fmt(d.replay)} entries/s |`
  }
  out.push('', '### Local API vs SDK', '',
    `| send 1 KiB, 127.0.0.1 | throughput (${api.concurrency} in flight) | p50 (one at a time) | p99 | p50 vs SDK | target |`,
    '|---|---|---|---|---|---|',
    sendRow('SDK `node.send()`', 'sdk'),
    sendRow('API `POST /v1/messages`, raw keep-alive socket (the API\'s own cost)', 'raw'),
    sendRow('API `POST /v1/messages`, node:http keep-alive', 'http'),
    sendRow('API `POST /v1/messages`, fetch (undici)', 'fetch'),
    floorRow('HTTP floor: `GET /v1/health`, raw socket', 'raw'),
    floorRow('HTTP floor: `GET /v1/health`, node:http', 'http'),
    floorRow('HTTP floor: `GET /v1/health`, fetch', 'fetch'),
    '',
    '| inbox delivery (send → consumer) | p50 | p99 | p50 vs SDK | target | backlog replay |',
    '|---|---|---|---|---|---|',
    deliveryRow('SDK `node.messages()`', 'sdk'),
    deliveryRow('SSE `GET /v1/stream`', 'sse'),
    deliveryRow('WebSocket `/v1/stream`', 'ws'),
    deliveryRow('polling `GET /v1/messages?after=` (back-to-back)', 'poll'))
}

if (sections.has('mailbox')) {
  log('mailbox: sealed deposits with durable acks vs NATS JetStream file store; drain; outbox end to end')
  const mb = await runMailboxBench({ messages: quick ? 5_000 : 50_000, outboxMessages: quick ? 2_000 : 10_000, log })
  figures.mailbox = mb
  const ratio = mb.nats != null ? mb.relayCapacity.perSecond / mb.nats.perSecond : undefined
  out.push('', '### Store-and-forward', '',
    '| | molt | baseline (same run) | ratio | target |',
    '|---|---|---|---|---|',
    `| relay mailbox deposits: pre-sealed ~1 KiB boxes, signed frames of 1,024, 2 streams, each acked after an fsync'd group commit (${fmt(mb.messages)} msgs) | ${fmt(mb.relayCapacity.perSecond)} msg/s | ${mb.nats != null ? `${fmt(mb.nats.perSecond)} msg/s NATS JetStream file store, async publish of 1 KiB, acked` : 'nats-server not installed'} | ${ratio != null ? `${fmt(ratio, 2)}×` : '—'} | ≥ 26,000 msg/s — ${check(mb.relayCapacity.perSecond >= 26_000)}; ≥ 2× NATS — ${ratio != null ? check(ratio >= 2) : 'not measured'} |`,
    `| the same through the SDK: each message sealed, batched and deposited by the mailbox client (sender CPU included) | ${fmt(mb.deposit.perSecond)} msg/s | — | — | — |`,
    `| mailbox drain: recipient comes online with ${fmt(mb.drain.messages)} stored, fetches, opens, stores, acks | ${fmt(mb.drain.perSecond)} msg/s (${fmt(mb.drain.seconds, 2)} s incl. start-up) | — | — | ≥ 20,000 msg/s with ≥ 100,000 stored — ${mb.drain.messages >= 100_000 ? check(mb.drain.perSecond >= 20_000) : 'not measured (--quick)'} |`,
    `| offline then online through the outbox: ${fmt(mb.outboxEndToEnd.messages)} queued messages, from the recipient's connect to all in its inbox | ${fmt(mb.outboxEndToEnd.seconds, 2)} s (${fmt(mb.outboxEndToEnd.perSecond)} msg/s) | — | — | — |`,
    `| sealing one box (X25519 shared key cached, HKDF + ChaCha20-Poly1305), inside the deposit figure | ${fmt(mb.sealMicros, 1)} µs | — | — | — |`)
}

if (sections.has('relay')) {
  log('relay: relayed vs direct between two processes (1 KiB), then relay capacity with reserved agents')
  const path = await runRelayPathBench({ messages: quick ? 5_000 : 20_000, roundTrips: quick ? 500 : 2_000, log })
  const capacity = await runRelayCapacityBench({ sizes: quick ? [100] : [100, 500, 1000, 5000], log })
  figures.relay = { path, capacity }
  const ratio = path.relayed.acked / path.direct.acked
  out.push('', '### Relay', '',
    '| 1 KiB messages, same machine | relayed | direct | ratio | target |',
    '|---|---|---|---|---|',
    `| acknowledged throughput | ${fmt(path.relayed.acked)} msg/s | ${fmt(path.direct.acked)} msg/s | ${fmt(ratio, 2)}× | ≥ 0.5× — ${check(ratio >= 0.5)} |`,
    `| request/response p50 | ${fmt(path.relayed.p50, 3)} ms | ${fmt(path.direct.p50, 3)} ms | ${fmt(path.relayed.p50 / path.direct.p50, 2)}× | ≤ 2× — ${check(path.relayed.p50 / path.direct.p50 <= 2)} |`,
    `| raw js-libp2p echo p50 (the floor, same connections) | ${fmt(path.relayed.rawEcho.p50, 3)} ms | ${fmt(path.direct.rawEcho.p50, 3)} ms | ${fmt(path.relayed.rawEcho.p50 / path.direct.rawEcho.p50, 2)}× | — |`,
    `| molt's own time at p50 (request/response − raw echo) | ${fmt(path.relayed.p50 - path.relayed.rawEcho.p50, 3)} ms | ${fmt(path.direct.p50 - path.direct.rawEcho.p50, 3)} ms | ${fmt((path.relayed.p50 - path.relayed.rawEcho.p50) / (path.direct.p50 - path.direct.rawEcho.p50), 2)}× | — |`,
    `| request/response p99 | ${fmt(path.relayed.p99, 3)} ms | ${fmt(path.direct.p99, 3)} ms | ${fmt(path.relayed.p99 / path.direct.p99, 2)}× | relayed ≤ 10 ms — ${check(path.relayed.p99 <= 10)} |`,
    '',
    '| agents holding reservations | relay RSS | relay heap | heap per reservation | idle CPU (one core = 100 %) | target |',
    '|---|---|---|---|---|---|',
    ...capacity.map(r => `| ${r.agents} (${r.reserved} at relay) | ${fmt(r.rssMiB)} MiB | ${fmt(r.heapMiB)} MiB | ${fmt(r.heapPerReservationKiB, 1)} KiB | ${fmt(r.idleCpuPercent, 1)}% | ≤ 50 KiB — ${check(r.heapPerReservationKiB <= 50)}${r.agents === 1000 ? `; ≤ 10 % CPU — ${check(r.idleCpuPercent <= 10)}` : ''} |`))
}

if (sections.has('reach')) {
  log('reach: request(PeerId) to a never-met agent behind another relay (DHT lookup + relay dial), then mailbox delivery on return')
  const loadBefore = load()
  const reach = await runReachBench({ runs: quick ? 5 : 20, mailboxRuns: quick ? 3 : 20, log })
  figures.reach = reach
  out.push('', '### Reaching an agent by PeerId (loopback, one process)', '', `Load average ${loadBefore} at the start, ${load()} at the end.`, '',
    '| measure | runs | p50 | p99 | p50 / p99 vs by address | target |',
    '|---|---|---|---|---|---|',
    `| request(PeerId) → reply, never-met agent via DHT record + relay (${reach.cold.relayed}/${reach.cold.runs} relayed, ${reach.cold.failed} failed) | ${reach.cold.runs} | ${fmt(reach.cold.p50, 1)} ms | ${fmt(reach.cold.p99, 1)} ms | ${fmt(reach.cold.p50 / reach.byAddress.p50, 2)}× / ${fmt(reach.cold.p99 / reach.byAddress.p99, 2)}× | p50 ≤ 1 s — ${check(reach.cold.p50 <= 1000)}; p99 ≤ 3 s — ${check(reach.cold.p99 <= 3000)} |`,
    `| baseline: request(circuit address copied by hand) → reply, fresh sender | ${reach.byAddress.runs} | ${fmt(reach.byAddress.p50, 1)} ms | ${fmt(reach.byAddress.p99, 1)} ms | 1× | — |`,
    `| mailbox: recipient start → stored message in its inbox | ${reach.mailbox.runs} | ${fmt(reach.mailbox.p50, 1)} ms | ${fmt(reach.mailbox.p99, 1)} ms | — | p99 ≤ 10 s — ${check(reach.mailbox.p99 <= 10_000)} |`)
}

if (sections.has('discover')) {
  log('discover: DHT-only capability lookups (card fetched and verified) on a loopback DHT')
  const sizes = quick ? [12] : [12, 100]
  const loadBefore = load()
  const results = await runDiscoverBench({ sizes, lookups: quick ? 20 : 50, log })
  figures.discover = results
  const base = results[0]
  out.push('', '### Discover', '', `Load average ${loadBefore} at the start, ${load()} at the end.`, '',
    '| DHT nodes (offering a capability) | lookups found | p50 | p99 | p50 / p99 vs 12 nodes | target |',
    '|---|---|---|---|---|---|',
    ...results.map(r => `| ${r.nodes} (${r.offering}) | ${r.found}/${r.lookups} | ${fmt(r.p50, 1)} ms | ${fmt(r.p99, 1)} ms | ${fmt(r.p50 / base.p50, 2)}× / ${fmt(r.p99 / base.p99, 2)}× | ${r.nodes >= 100 ? `all found — ${check(r.found === r.lookups)}; p99 ≤ 1 s — ${check(r.p99 <= 1000)}` : '—'} |`))
}

if (sections.has('lan')) {
  try {
    const { runLanBench } = await import('./lan.js')
    log('lan: two `molt agent` processes in a fresh network namespace, spawn → first delivered query/respond')
    const lan = await runLanBench({ runs: quick ? 5 : 20, log })
    figures.lan = lan
    out.push('', '### LAN (mDNS, private namespace)', '',
      '| runs | p50 | p99 | target |', '|---|---|---|---|',
      `| ${lan.samples.length} | ${fmt(lan.p50)} ms | ${fmt(lan.p99)} ms | p50 ≤ 1 s — ${check(lan.p50 <= 1000)}; p99 ≤ 2 s — ${check(lan.p99 <= 2000)} |`)
  } catch (err: any) {
    log(`lan: not run: ${err.message}`)
    out.push('', '### LAN', '', `not run: ${err.message}`)
  }
}

if (sections.has('hostile')) {
  log('hostile: an honest peer\'s request/response during a flood of 1 MiB nested-JSON speak frames (24 per second) from an attacker process, beside no attack')
  const hostile = await runHostileBench({ requests: quick ? 200 : 1000, rate: 24, log })
  figures.hostile = hostile
  const { baseline, nested, flat } = hostile
  const ratio = (a: number, b: number): string => `${fmt(a / b, 2)}×`
  out.push('', '### Nested-JSON flood', '',
    '| honest request/response | no attack | 1 MiB `[[[[…` frames, 24/s | ratio | 1 MiB flat frames, 24/s (same bytes, no nesting) | target |',
    '|---|---|---|---|---|---|',
    `| p50 | ${fmt(baseline.p50, 2)} ms | ${fmt(nested.p50, 2)} ms | ${ratio(nested.p50, baseline.p50)} | ${fmt(flat.p50, 2)} ms | — |`,
    `| p99 | ${fmt(baseline.p99, 2)} ms | ${fmt(nested.p99, 2)} ms | ${ratio(nested.p99, baseline.p99)} | ${fmt(flat.p99, 2)} ms | ≤ 2× — ${check(nested.p99 / baseline.p99 <= 2)} |`,
    `| nested ÷ flat (what depth adds over the bytes alone) p50 / p99 | — | ${ratio(nested.p50, flat.p50)} / ${ratio(nested.p99, flat.p99)} | — | — | — |`,
    `| attack frames refused during the run | — | ${fmt(nested.attackFrames)} | — | ${fmt(flat.attackFrames)} | — |`,
    `| honest requests failed (10 s timeout) | ${fmt(baseline.failures)} | ${fmt(nested.failures)} | — | ${fmt(flat.failures)} | 0 |`)
}

if (sections.has('trust')) {
  log('trust: attestation validation + store, propagation over gossipsub, catch-up sync, score computation')
  const tr = await runTrustBench({ nodes: quick ? 12 : 30, attestations: quick ? 200 : 1000, missed: quick ? 2000 : 10_000, log })
  figures.trust = tr
  out.push('', '### Trust', '',
    '| | figure |', '|---|---|',
    `| attestation verification (canonical JSON, SHA-256 id, Ed25519) | ${fmt(tr.verifyPerSecond)} /s |`,
    `| validation + store + publish through \`trust.submit()\` (one node) | ${fmt(tr.submitPerSecond)} /s |`,
    `| ${fmt(tr.propagation.attestations)} attestations from 10 publishers reach all of ${tr.propagation.nodes} nodes (each dials 3) | ${fmt(tr.propagation.seconds, 2)} s |`,
    `| a late node that missed ${fmt(tr.sync.missed)} attestations: connect → all stored (/molt/trust-sync/1.0.0) | ${fmt(tr.sync.seconds, 2)} s |`,
    ...tr.scoring.map(s => `| score of one peer over ${fmt(s.attestations)} attestations (model build ${fmt(s.buildMs, 1)} ms, once per change) | ${fmt(s.scoreMs, 1)} ms |`))
}

const table = out.join('\n')
const here = dirname(fileURLToPath(import.meta.url))
const resultsDir = join(here, '..', '..', 'bench', 'results')
await mkdir(resultsDir, { recursive: true })
await writeFile(join(resultsDir, 'latest.md'), table + '\n')
process.stdout.write(values.json ? JSON.stringify(figures, null, 2) + '\n' : table + '\n')
