#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Replays recorded Kubernetes API responses over HTTPS for pod_watcher_test.

Binds 127.0.0.1 on a free port, prints the port on stdout, then answers each
GET with the next step of the scenario (a JSON list). Step fields:
  expect        "list" or "watch": the request must be of that kind
  status        HTTP status (default 200)
  body_file     file sent as the body
  lines_file    JSON-lines file streamed as a watch body
  chunk         send the body in chunks of this many bytes ...
  delay_ms      ... sleeping this long between chunks (a slow response)
  cut_bytes     send only this many bytes, then drop the connection
  stall_s       after the body, keep the connection open and silent
The scenario may instead be an object {"steps": [...], "node_file": F}:
GET /api/v1/nodes/<name> is then answered with F (without one, 404) and
never consumes a step. Paths other than /api/v1/pods (the kubelet's /pods)
are steps like any other.
Each request is appended to the log file as one JSON line: path, query,
authorization header, step index, and whether it matched the expectation
(node requests: kind "node", step -1).
Test-only code: no production path depends on it.
"""
import argparse
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--client-ca", default="")
    args = ap.parse_args()

    with open(args.scenario) as f:
        scenario = json.load(f)
    node_file = None
    if isinstance(scenario, dict):
        steps = scenario.get("steps", [])
        node_file = scenario.get("node_file")
    else:
        steps = scenario
    lock = threading.Lock()
    state = {"next": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # body ends when the connection closes

        def log_message(self, fmt, *a):
            pass

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            kind = "watch" if query.get("watch") == ["1"] else "list"
            if url.path.startswith("/api/v1/nodes/"):
                with lock, open(args.log, "a") as log:
                    log.write(json.dumps({
                        "step": -1, "kind": "node", "path": url.path,
                        "query": {}, "matched": True,
                        "auth": self.headers.get("Authorization", "")}) + "\n")
                body = b""
                if node_file:
                    with open(node_file, "rb") as f:
                        body = f.read()
                self.send_response(200 if node_file else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)
                return
            with lock:
                idx = state["next"]
                state["next"] += 1
            step = steps[idx] if idx < len(steps) else {"status": 503}
            ok = step.get("expect", kind) == kind
            with lock, open(args.log, "a") as log:
                log.write(json.dumps({
                    "step": idx, "kind": kind, "path": url.path,
                    "query": {k: v[0] for k, v in query.items()},
                    "auth": self.headers.get("Authorization", ""),
                    "matched": ok}) + "\n")
            if not ok:
                self.send_response(400)
                self.end_headers()
                return
            body = b""
            if "body_file" in step:
                with open(step["body_file"], "rb") as f:
                    body = f.read()
            if "lines_file" in step:
                with open(step["lines_file"], "rb") as f:
                    body = f.read()
            if "cut_bytes" in step:
                body = body[: step["cut_bytes"]]
            self.send_response(step.get("status", 200))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                chunk = step.get("chunk", len(body) or 1)
                for i in range(0, len(body), chunk):
                    self.wfile.write(body[i:i + chunk])
                    self.wfile.flush()
                    if step.get("delay_ms"):
                        time.sleep(step["delay_ms"] / 1000.0)
                if step.get("stall_s"):
                    time.sleep(step["stall_s"])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
