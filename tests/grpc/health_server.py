"""A gRPC health server on Python grpcio (gRPC C-core) for tests/grpc.rs:

    python3 health_server.py [--no-health] [--slow SECONDS] [--unix PATH] [--tls CERT KEY]

Listens on a free 127.0.0.1 port (or the unix socket PATH: "port 0"; over
TLS with --tls, PEM files), prints "port N", then reads commands on
stdin, one a line, answering "ok" to each:

    set SERVICE STATUS    (SERVICE "-" is the server as a whole, "")
    meta KEY              (answers the last call's metadata KEY first, or "-")
"""

import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


class Health(health.HealthServicer):
    """The stock servicer, answering after a delay when asked to."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.metadata = {}

    def Check(self, request, context):
        self.metadata = dict(context.invocation_metadata())
        time.sleep(self.delay)
        return super().Check(request, context)


def main():
    args = sys.argv[1:]
    delay = float(args[args.index("--slow") + 1]) if "--slow" in args else 0.0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = Health(delay)
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    if "--no-health" not in args:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if "--unix" in args:
        port = server.add_insecure_port("unix:" + args[args.index("--unix") + 1])
    elif "--tls" in args:
        at = args.index("--tls")
        with open(args[at + 1], "rb") as cert, open(args[at + 2], "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if len(words) == 3 and words[0] == "set":
            service = "" if words[1] == "-" else words[1]
            status = health_pb2.HealthCheckResponse.ServingStatus.Value(words[2])
            servicer.set(service, status)
        elif len(words) == 2 and words[0] == "meta":
            print(servicer.metadata.get(words[1], "-"), flush=True)
        print("ok", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
