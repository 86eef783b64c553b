#!/usr/bin/python3
"""An independent MoltSpeak v0.1 signer/verifier for molt's interop tests.

Written for the tests from the spec alone (reference/moltspeak.md §1.7), with
no molt code: the canonical form is the Python reference SDK's
json.dumps(message_without_sig, sort_keys=True, separators=(',', ':')) with the
default ensure_ascii=True, signatures are Ed25519 (PyNaCl) as
"ed25519:" + base64.

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"op": "sign", "seed": "<64 hex>", "texts": [...]}
      signs each message text as the reference SDK does (plain json.loads:
      the last duplicate wins, ints exact, floats as repr) and returns the
      source text with "sig" appended, so odd spellings reach the verifier
  {"op": "verify", "texts": [...]}
      verifies each wire text strictly and returns
      {"ok": bool, "signed": bool, "code": ..., "reason": ..., "canonical": ...}
  {"op": "public_key", "seed": "<64 hex>"}

Strict verification refuses what two parsers could read differently (the
policy molt documents in protocols/speak.md, Conformance):
  - a key repeated in one object (after unescaping)   -> E_PARSE
  - an integer without an exact IEEE double value     -> E_SIGNATURE
  - a float that overflows a double (1e400)           -> E_SIGNATURE
  - NaN / Infinity literals (not JSON)                 -> E_PARSE
  - a signature that does not verify                   -> E_SIGNATURE
"""
import base64
import json
import math
import sys

try:
    from nacl.signing import SigningKey, VerifyKey
    from nacl.exceptions import BadSignatureError
except ImportError:  # the test runner checks for this line
    print("PyNaCl missing: install python3-nacl", file=sys.stderr)
    sys.exit(3)

SIG_PREFIX = "ed25519:"

# integers of any length are read (Python 3.11 refuses more than 4,300 digits by default)
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)


class Refusal(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def canonical(message):
    unsigned = {k: v for k, v in message.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"))


def strict_loads(text):
    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise Refusal("E_PARSE", "duplicate key %s" % json.dumps(key))
            out[key] = value
        return out

    def parse_int(token):
        n = int(token)
        try:
            exact = float(n) == n
        except OverflowError:
            exact = False
        if not exact:
            raise Refusal("E_SIGNATURE", "integer %s has no exact double value" % token[:40])
        return n

    def parse_float(token):
        x = float(token)
        if math.isinf(x):
            raise Refusal("E_SIGNATURE", "number %s overflows a double" % token[:40])
        return x

    def parse_constant(token):
        raise Refusal("E_PARSE", "%s is not JSON" % token)

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_int=parse_int,
                          parse_float=parse_float, parse_constant=parse_constant)
    except Refusal:
        raise
    except ValueError as err:
        raise Refusal("E_PARSE", "not valid JSON: %s" % err)


def public_key(seed_hex):
    key = SigningKey(bytes.fromhex(seed_hex))
    return SIG_PREFIX + base64.b64encode(bytes(key.verify_key)).decode()


def sign(seed_hex, text):
    key = SigningKey(bytes.fromhex(seed_hex))
    message = json.loads(text)  # as the reference SDK reads it
    signature = key.sign(canonical(message).encode("utf-8")).signature
    sig = SIG_PREFIX + base64.b64encode(signature).decode()
    body = text.rstrip()
    assert body.endswith("}")
    return body[:-1] + ',"sig":' + json.dumps(sig) + "}"


def verify(text):
    try:
        lenient = json.loads(text)
    except ValueError as err:
        return {"ok": False, "signed": False, "code": "E_PARSE", "reason": "not valid JSON: %s" % err}
    if not isinstance(lenient, dict) or "sig" not in lenient:
        return {"ok": True, "signed": False}
    try:
        message = strict_loads(text)
    except Refusal as refusal:
        return {"ok": False, "signed": True, "code": refusal.code, "reason": refusal.reason}
    sig = message.get("sig")
    key = message.get("from", {}).get("key") if isinstance(message.get("from"), dict) else None
    if not isinstance(sig, str) or not sig.startswith(SIG_PREFIX) or not isinstance(key, str) or not key.startswith(SIG_PREFIX):
        return {"ok": False, "signed": True, "code": "E_SIGNATURE", "reason": "sig or from.key malformed"}
    form = canonical(message)
    try:
        VerifyKey(base64.b64decode(key[len(SIG_PREFIX):])).verify(form.encode("utf-8"), base64.b64decode(sig[len(SIG_PREFIX):]))
    except (BadSignatureError, ValueError) as err:
        return {"ok": False, "signed": True, "code": "E_SIGNATURE", "reason": "signature does not verify: %s" % err, "canonical": form}
    return {"ok": True, "signed": True, "canonical": form}


def main():
    request = json.load(sys.stdin)
    op = request["op"]
    if op == "sign":
        answer = [sign(request["seed"], text) for text in request["texts"]]
    elif op == "verify":
        answer = [verify(text) for text in request["texts"]]
    elif op == "public_key":
        answer = public_key(request["seed"])
    else:
        raise SystemExit("unknown op %r" % op)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
