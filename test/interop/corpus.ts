import { randomUUID } from 'node:crypto'

/*
 * The cross-implementation corpus: MoltSpeak messages as JSON *text*, so
 * spellings the JavaScript value cannot keep (`1.0`, `1e2`, `\u0061mount`,
 * repeated keys, 2^53+1) reach both implementations as written. Every op,
 * signed and unsigned, floats, integers around 2^53, big exponents,
 * non-ASCII, emoji, escapes, deep and wide payloads.
 *
 * `expect` is the documented verdict for a signed copy (protocols/speak.md,
 * Conformance): `accept`, or the refusal code both sides must give.
 */

export type Verdict = 'accept' | 'E_PARSE' | 'E_SIGNATURE'

/**
 * Cases molt refuses to sign once JSON.parse made them JavaScript numbers:
 * integers above 2^53 that JSON.stringify writes inexactly (2^64 as
 * 18446744073709552000, which Python reads as another int) and Infinity
 * (JSON has none)
 */
export const UNSIGNABLE_BY_MOLT = [
  'float 12345678901234567890.0', 'integer 18446744073709551616', 'integer 1e400', 'integer -1E+400', 'integer of 5000 digits'
]

export interface Case {
  name: string
  /** The message without `sig`, as JSON text */
  text: string
  expect: Verdict
}

export interface Parties {
  /** `from`: the signer, with its `ed25519:` key */
  from: { agent: string, org: string, key: string }
  to: { agent: string, org: string }
}

const NAMES = { agent: 'Bob Assistant', org: 'bob.v2' }

/** Deterministic pseudo-random doubles over the whole exponent range (xorshift, fixed seed) */
function randomDoubles (n: number): number[] {
  let s = 0x9e3779b9
  const next = (): number => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s
  }
  const out: number[] = []
  const view = new DataView(new ArrayBuffer(8))
  while (out.length < n) {
    view.setUint32(0, next())
    view.setUint32(4, next())
    const x = view.getFloat64(0)
    if (Number.isFinite(x)) out.push(out.length % 3 === 0 ? x : Math.fround(x) * 10 ** ((next() % 40) - 20))
  }
  // integers beyond 2^53 that JavaScript prints as inexact digits are refused by design (see the integer cases)
  return out.filter(x => Number.isFinite(x) && !(Number.isInteger(x) && Math.abs(x) > Number.MAX_SAFE_INTEGER && Math.abs(x) < 1e21))
}

export function corpus (parties: Parties, now = Date.now()): Case[] {
  const cases: Case[] = []
  const from = JSON.stringify(parties.from)
  const to = JSON.stringify(parties.to)
  const add = (name: string, op: string, p: string, expect: Verdict = 'accept', extra = '', cls = 'int'): void => {
    cases.push({
      name,
      expect,
      text: `{"v":"0.1","id":"${randomUUID()}","ts":${now},"op":"${op}","from":${from},"to":${to},"p":${p},"cls":"${cls}"${extra}}`
    })
  }

  // every op of the schema, and molt's extension ops
  add('hello', 'hello', `{"protocol_versions":["0.1"],"capabilities":["query"],"extensions":[],"max_message_size":1048576,"supported_cls":["pub","int"]}`)
  add('verify', 'verify', `{"challenge":"${'ab'.repeat(32)}","timestamp":${now}}`)
  add('query', 'query', '{"domain":"weather","intent":"forecast","params":{"location":"Tokyo","days":3}}')
  add('respond without re', 'respond', '{"status":"success","data":{"temp":21.5,"unit":"C"}}')
  add('respond with re', 'respond', '{"status":"partial","data":[1,2.5,"x"]}', 'accept', `,"re":"${randomUUID()}"`)
  add('task with boolean callbacks', 'task', `{"action":"create","task_id":"t-1","priority":"high","deadline":${now + 60_000},"callback":{"on_complete":true,"on_progress":false},"subtasks":[{"id":"s1","type":"fetch","depends_on":[]}]}`)
  add('stream progress 5e-05', 'stream', '{"action":"chunk","stream_id":"s-1","seq":3,"progress":5e-05,"data":"abc"}')
  add('tool', 'tool', '{"action":"invoke","tool":"calc","input":{"x":1.0,"y":-0.0},"timeout_ms":5000}', 'accept', ',"cap":["tool.invoke"]')
  add('consent', 'consent', '{"action":"request","data_types":["email"],"purpose":"newsletter","human":"user:jane@example.com","duration":"session"}')
  add('error', 'error', '{"code":"E_TIMEOUT","category":"transport","message":"slow","recoverable":true,"suggestion":{"action":"retry_after","delay_ms":1000}}', 'accept', `,"re":"${randomUUID()}"`)
  add('ping (molt extension)', 'ping', '{"nonce":"00ff"}')
  add('pong (molt extension)', 'pong', '{"nonce":"00ff","status":"alive","load":0.00005,"queue_depth":0}', 'accept', `,"re":"${randomUUID()}"`)
  add('register (molt extension)', 'register', '{"action":"create","ttl":86400000,"profile":{"name":"py","capabilities":["query"]}}')
  add('discover (molt extension)', 'discover', '{"capability":"translate.text","limit":10}')
  add('pii with pii_meta', 'query', '{"domain":"crm","params":{"email":"jane@example.com"}}', 'accept',
    ',"pii_meta":{"types":["email"],"consent":{"granted_by":"user:jane","purpose":"support","proof":"tok-1"}}', 'pii')
  add('exp and ext', 'query', '{"domain":"x"}', 'accept', `,"exp":${now + 3_600_000},"ext":{"acme.trace":{"span":"a1","ratio":0.25}}`)
  cases.push({
    name: 'names with a dot and a space',
    expect: 'accept',
    text: `{"v":"0.1","id":"${randomUUID()}","ts":${now},"op":"query","from":${from},"to":${JSON.stringify(NAMES)},"p":{"domain":"x"},"cls":"pub"}`
  })

  // floats, as Python writes them and in other spellings
  for (const n of ['1.0', '0.1', '5e-05', '1e-07', '1e+16', '-0.0', '100.0', '0.00005', '1e-7', '1e16', '1e2', '1E2', '1.5e300', '2.5e-300',
    '5e-324', '1.7976931348623157e+308', '1e308', '-1e-320', '123456789.123456789', '0.30000000000000004', '1e-400', '12345678901234567890.0']) {
    add(`float ${n}`, 'query', `{"domain":"num","value":${n}}`)
  }
  // integers around 2^53: exact ones pass, the others are refused by both sides
  for (const [n, expect] of [
    ['9007199254740991', 'accept'], ['9007199254740992', 'accept'], ['-9007199254740992', 'accept'], ['9007199254740994', 'accept'],
    ['18446744073709551616', 'accept'], ['100000000000000000000', 'accept'], ['-0', 'accept'],
    ['9007199254740993', 'E_SIGNATURE'], ['-9007199254740993', 'E_SIGNATURE'], ['100000000000000000000000000000', 'E_SIGNATURE'],
    ['1e400', 'E_SIGNATURE'], ['-1E+400', 'E_SIGNATURE'], ['9'.repeat(5000), 'E_SIGNATURE']
  ] as Array<[string, Verdict]>) {
    add(`integer ${n.length > 40 ? `of ${n.length} digits` : n}`, 'query', `{"domain":"num","value":${n}}`, expect)
  }

  // strings and keys
  add('non-ASCII', 'query', '{"domain":"Zoë","text":"漢字 Привет café"}')
  add('emoji', 'query', '{"domain":"😀","text":"🎉 party 👩‍👩‍👧"}')
  add('escapes', 'query', '{"domain":"esc","text":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u007f\\u00e9\\ud83d\\ude00"}')
  add('lone surrogates', 'query', '{"domain":"s","hi":"\\ud800","lo":"\\udfff"}')
  add('keys by code point', 'query', '{"domain":"k","\\ue000":2,"😀":3,"\\ud800":1,"é":0,"Z":-1}')
  add('\\u0061mount key', 'query', '{"domain":"pay","\\u0061mount":100}')
  add('duplicate amount', 'query', '{"domain":"pay","amount":999,"amount":100}', 'E_PARSE')
  add('duplicate via escape', 'query', '{"domain":"pay","amount":999,"\\u0061mount":100}', 'E_PARSE')
  add('nested duplicate', 'query', '{"domain":"pay","items":[{"a":1},{"a":1,"b":2,"a":1}]}', 'E_PARSE')
  add('pretty-printed source', 'query', '{\n  "domain" : "ws",\n  "list" : [ 1 , 2.0 , { "x" : null } ]\n}')

  // deep and wide
  add('deep (depth 50)', 'query', '{"domain":"deep","d":' + '{"a":'.repeat(49) + '1' + '}'.repeat(49) + '}')
  add('deep arrays', 'query', '{"domain":"deep","d":' + '['.repeat(49) + '1.5' + ']'.repeat(49) + '}')
  const wide: string[] = []
  for (let i = 0; i < 2000; i++) wide.push(`"k${(i * 7919) % 2000}":${i % 3 === 0 ? i / 7 : i}`)
  add('wide object', 'query', `{"domain":"wide","o":{${wide.join(',')}}}`)
  add('random doubles', 'query', `{"domain":"rand","xs":${JSON.stringify(randomDoubles(3000))}}`)
  return cases
}

/** The same message without `sig`-relevant changes, unsigned: every unsigned case is accepted */
export function unsignedCases (cases: Case[]): Case[] {
  return cases.filter(c => !c.name.startsWith('float') && !c.name.startsWith('integer') && !c.name.startsWith('random'))
    .map(c => ({ ...c, name: `unsigned ${c.name}`, expect: 'accept' as Verdict, text: c.text.replace(/"id":"[^"]+"/, `"id":"${randomUUID()}"`) }))
}
