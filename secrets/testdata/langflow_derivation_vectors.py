"""Regenerates langflow_derivation_vectors.json (run with CPython 3.11 + cryptography).

The two derivation functions are Langflow's, verbatim in substance:
legacy_key   = services/auth/utils.py ensure_valid_key (<= 1.10.0)
current_key  = services/auth/utils.py ensure_fernet_key (>= 1.10.1)
The secrets below are test strings, not real secrets.
"""
import base64, hashlib, json, random, sys
from cryptography.fernet import Fernet


def legacy_key(s):
    if len(s) < 32:
        r = random.Random()
        r.seed(s)
        return base64.urlsafe_b64encode(bytes(r.getrandbits(8) for _ in range(32)))
    return (s + "=" * (4 - len(s) % 4)).encode()


def current_key(s):
    if len(s) < 32:
        return base64.urlsafe_b64encode(hashlib.sha256(s.encode()).digest())
    rem = len(s) % 4
    return (s if rem == 0 else s + "=" * (4 - rem)).encode()


def fernet_or_error(key):
    try:
        f = Fernet(key)
    except Exception as e:  # ValueError / binascii.Error, as Langflow would raise
        return None, type(e).__name__
    return f, None


BASE = "dBuuRmX0a5Gx3kqzT0C7mB1g7eYcY2Jq2Vd9sRxk2M0"  # token_urlsafe(32) shape, 43 chars
SECRETS = [
    ("token_urlsafe(32), 43 chars", BASE),
    ("Fernet.generate_key(), 44 chars with =", "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="),
    ("43 chars + '.' (44 code points)", BASE + "."),
    ("43 chars + ' ' (44 code points)", BASE + " "),
    ("space inside (44 code points)", BASE[:8] + " " + BASE[8:]),
    ("two junk chars (45 code points)", BASE + ".."),
    ("three junk chars (46 code points)", BASE + "..."),
    ("standard alphabet", "tIc+/W6qVwYzJ1Tj6sFw0rX2y9aN8bK4mQ3pL7uZ5c0"),
    ("non-ASCII junk, 44 code points", BASE + "é"),
    ("non-ASCII junk, 45 code points", BASE + "éé"),
    ("'=' at quad start is ignored", BASE[:4] + "=" + BASE[4:]),
    ("single '=' mid-quad is ignored", BASE[:6] + "=" + BASE[6:]),
    ("'==' mid-quad ends decoding early", BASE[:6] + "==" + BASE[6:]),
    ("64-char hex (openssl rand -hex 32)", "0123456789abcdef" * 4),
    ("64 zeros", "0" * 64),
    ("32 chars", "a" * 32),
    ("42 chars", BASE[:42]),
    ("44 data chars (33 bytes)", BASE + "A"),
    ("passphrase", "correct horse battery staple, but longer than 32"),
    ("86-char base64 of 64 bytes", base64.urlsafe_b64encode(bytes(range(64))).decode().rstrip("=")),
    ("31 code points", "x" * 31),
    ("32 code points, multi-byte", "鍵" * 32),
]

B64_INPUTS = ["ab=c=", "a=b", "abc", "ab", "a", "ab==x", "abc=x", "====abcd", "a b\u00e9cd",
              "YWJj", "YWJjZA==", "YWJjZA", "YWJjZA=", "YWJjZA===", "YW=JjZA==", "Y=WJj",
              "+/-_", "////", "----", "", "=", "YWJjZA==YWJj", "Y W J j"]


def main():
    out = {"made_with": f"CPython {sys.version.split()[0]}", "cases": [], "base64": []}
    for desc, s in SECRETS:
        case = {"desc": desc, "secret": s, "code_points": len(s)}
        for name, fn in (("legacy", legacy_key), ("current", current_key)):
            key = fn(s)
            f, err = fernet_or_error(key)
            if f is None:
                case[name + "_error"] = err
                continue
            case[name + "_fernet_key"] = base64.urlsafe_b64encode(base64.urlsafe_b64decode(key)).decode()
            case[name + "_token"] = f._encrypt_from_parts(b"sk-test-plaintext", 1700000000, bytes(range(16))).decode()
        out["cases"].append(case)
    for s in B64_INPUTS:
        try:
            out["base64"].append({"input": s, "hex": base64.urlsafe_b64decode(s.encode()).hex()})
        except Exception as e:
            out["base64"].append({"input": s, "error": str(e)})
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()


main()
