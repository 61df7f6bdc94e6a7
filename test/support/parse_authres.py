#!/usr/bin/python3
"""Parses an Authentication-Results field (RFC 8601) with Debian's python3-authres,
an implementation independent of ours, and prints it as JSON:
{"authserv_id": ..., "results": [[method, result, [[ptype, property, value], ...]], ...]}.
Input on stdin: the field value, possibly folded over several lines."""
import json
import sys

import authres

value = " ".join(line.strip() for line in sys.stdin.read().splitlines())
header = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + value)
print(json.dumps({
    "authserv_id": header.authserv_id,
    "results": [[r.method, r.result, [[p.type, p.name, p.value] for p in r.properties]] for r in header.results],
}))
