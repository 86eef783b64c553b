/**
 * `npm run bench`: every benchmark, each measured beside its baseline in the
 * same run; prints a markdown table and writes it to bench/results/latest.md.
 *   --quick   fewer messages (a smoke run)
 *   --json    print the raw figures as JSON
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { cpus } from 'node:os'
import { runSpeakBench } from './speak.js'
import { fmt } from './stats.js'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } } })
if (values.help) {
  process.stdout.write('usage: npm run bench [-- --quick] [-- --json]\n')
  process.exit(0)
}
const log = (line: string): void => { process.stderr.write(line + '\n') }

log(`molt benchmarks on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`)
log('speak: 1 KiB messages, two processes, one connection on 127.0.0.1')
const speak = await runSpeakBench({
  messages: values.quick ? 5_000 : 30_000,
  roundTrips: values.quick ? 500 : 3_000,
  rounds: values.quick ? 1 : 3,
  log
})

const check = (ok: boolean): string => ok ? 'met' : '**missed**'
const ratioOne = speak.moltAcked / speak.rawOnePerSend
const ratioCoalesced = speak.moltAcked / speak.rawCoalesced
const ratioP99 = speak.moltRequest.p99 / speak.rawEcho.p99
const table = [
  `Measured ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores, \`npm run bench${values.quick ? ' -- --quick' : ''}\`.`,
  '',
  '| 1 KiB messages, one connection | molt | raw js-libp2p | ratio | target |',
  '|---|---|---|---|---|',
  `| acknowledged throughput vs raw one-message-per-send | ${fmt(speak.moltAcked)} msg/s | ${fmt(speak.rawOnePerSend)} msg/s (unacknowledged) | ${fmt(ratioOne, 2)}× | ≥ 3× — ${check(ratioOne >= 3)} |`,
  `| acknowledged throughput vs raw coalesced (64/send) | ${fmt(speak.moltAcked)} msg/s | ${fmt(speak.rawCoalesced)} msg/s (unacknowledged) | ${fmt(ratioCoalesced, 2)}× | ≥ 0.7× — ${check(ratioCoalesced >= 0.7)} |`,
  `| request/response p50 | ${fmt(speak.moltRequest.p50, 3)} ms | ${fmt(speak.rawEcho.p50, 3)} ms (echo) | ${fmt(speak.moltRequest.p50 / speak.rawEcho.p50, 2)}× | — |`,
  `| request/response p99 | ${fmt(speak.moltRequest.p99, 3)} ms | ${fmt(speak.rawEcho.p99, 3)} ms (echo) | ${fmt(ratioP99, 2)}× | ≤ 1.5× — ${check(ratioP99 <= 1.5)} |`
].join('\n')

const here = dirname(fileURLToPath(import.meta.url))
const resultsDir = join(here, '..', '..', 'bench', 'results')
await mkdir(resultsDir, { recursive: true })
await writeFile(join(resultsDir, 'latest.md'), table + '\n')
process.stdout.write(values.json ? JSON.stringify({ speak }, null, 2) + '\n' : table + '\n')
