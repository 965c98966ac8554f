"""Verifies a JWT the way an independent relying party would: PyJWT (Debian's python3-jwt) reads the
issuer's discovery document, fetches its JWKS with its own PyJWKClient, and checks the signature, the
issuer, the audience and the times. Prints the verified claims and header as JSON; exits 1 with the
reason on stderr when verification fails.

usage: pyjwt_verify.py ISSUER_URL FETCH_BASE AUDIENCE < token
(FETCH_BASE is where the issuer's documents are fetched from, when the issuer URL is not reachable
here; the issuer compared with `iss` stays ISSUER_URL.)
"""
import json
import sys
import urllib.request

import jwt


def main() -> int:
    issuer, fetch_base, audience = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    token = sys.stdin.read().strip()
    with urllib.request.urlopen(f"{fetch_base}/.well-known/openid-configuration", timeout=10) as response:
        discovery = json.load(response)
    if discovery.get("issuer") != issuer:
        print(f"discovery names issuer {discovery.get('issuer')!r}, expected {issuer!r}", file=sys.stderr)
        return 1
    jwks_uri = discovery["jwks_uri"].replace(issuer.rstrip("/"), fetch_base, 1)
    algorithms = discovery["id_token_signing_alg_values_supported"]
    try:
        key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=algorithms, audience=audience, issuer=issuer, options={"require": ["exp", "iat", "iss", "sub", "aud"]})
    except jwt.PyJWTError as err:
        print(f"{type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
