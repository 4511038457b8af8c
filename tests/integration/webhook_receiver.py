"""A webhook receiver for the tests: a real HTTP server in its own process, killable at any moment.

    python webhook_receiver.py PORT LOG [--fail N] [--drop N]

Each POST is appended to LOG as one JSON line (headers and body) and synced to disk before the
answer, so what the log holds was received, whatever happens next. `--fail N` answers the first N
requests with 503; `--drop N` closes the first N connections after reading the body, without an
answer (the sender cannot know it arrived)."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    opts = dict(zip(sys.argv[3::2], map(int, sys.argv[4::2])))
    left = {"fail": opts.get("--fail", 0), "drop": opts.get("--drop", 0)}
    log = open(path, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if left["fail"] > 0:
                left["fail"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            log.write(json.dumps({"delivery": self.headers.get("X-GridPatrol-Delivery"),
                                  "event": self.headers.get("X-GridPatrol-Event"),
                                  "signature": self.headers.get("X-GridPatrol-Signature"),
                                  "body": body.decode()}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            if left["drop"] > 0:
                left["drop"] -= 1
                self.close_connection = True
                self.connection.close()
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
