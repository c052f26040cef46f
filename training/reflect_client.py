#!/usr/bin/env python3
"""Call ramtid knowing nothing but its address: every type comes from server reflection.

No .proto file and no generated stubs: the script asks the server's reflection service
(grpc.reflection.v1alpha, the version grpcio-reflection speaks) for the services and their
descriptors, builds the message classes from them, parses a needs object written as the
data contract writes it (section 3) into the reflected `ramtid.v1.EstimateRequest` with
protobuf's JSON parser, and calls `Estimate`. This is what grpcurl, Postman or any JSON
transcoding does, so it proves the proto's JSON form is the contract's.

    pip install grpcio grpcio-reflection
    # against a running server
    python training/reflect_client.py --addr 127.0.0.1:50051
    # or let the script start `ramtid serve` on a free loopback port and stop it after
    python training/reflect_client.py --server target/debug/ramtid --models models

Checks, each printed: the services listed include ramtid's three and health; the contract's
own example parses into EstimateRequest as it is, with its context values bare
(`"age": 84`); the needs object of --needs (default examples/estimate_request.json, the
contract's example completed for the shipped model's catalog) is estimated; and a context
value sent as JSON null is refused as missing, naming the field.
Exit status: 0 when every check passes, 1 when one fails, 2 on bad arguments.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The data contract's needs example (section 3), verbatim.
CONTRACT_EXAMPLE = """
{
  "recipient_id": "H-0042",
  "context": {"age": 84, "lives_alone": true, "cognition": 1, "mobility": 2},
  "needs": [
    {"code": "MORNING_CARE", "per_week": 7, "slot": "morning"},
    {"code": "SHOWER", "per_week": 1},
    {"code": "TRANSFER", "per_week": 14, "staff": 2},
    {"code": "CLEANING", "per_week": 0.5}
  ]
}
"""

SERVICES = [
    "ramtid.v1.EstimationService",
    "ramtid.v1.ModelService",
    "ramtid.v1.HistoryService",
    "grpc.health.v1.Health",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, models):
    port = free_port()
    env = dict(os.environ)
    env["RAMTID__SERVER__LISTEN"] = f"127.0.0.1:{port}"
    env["RAMTID__SERVER__METRICS_LISTEN"] = ""
    env["RAMTID__MODELS__DIR"] = str(models)
    env["RAMTID__HISTORY__URL"] = ""
    proc = subprocess.Popen([binary, "serve"], env=env)
    return proc, f"127.0.0.1:{port}"


class Reflected:
    """Message classes and unary calls built from the server's reflection alone."""

    def __init__(self, grpc, channel):
        from google.protobuf import descriptor_pool
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
            ProtoReflectionDescriptorDatabase,
        )

        self.grpc = grpc
        self.channel = channel
        self.db = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.db)

    def services(self):
        return self.db.get_services()

    def message(self, full_name):
        from google.protobuf import message_factory

        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def unary(self, service, method):
        """A callable for `service/method`, its request class and its response class."""
        m = self.pool.FindServiceByName(service).FindMethodByName(method)
        request = self.message(m.input_type.full_name)
        response = self.message(m.output_type.full_name)
        call = self.channel.unary_unary(
            f"/{service}/{method}",
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=response.FromString,
        )
        return call, request, response


def wait_ready(grpc, r, seconds):
    """Until the server answers with a model (GetCatalog stops being UNAVAILABLE)."""
    deadline = time.monotonic() + seconds
    grpc.channel_ready_future(r.channel).result(timeout=seconds)
    call, request, _ = r.unary("ramtid.v1.ModelService", "GetCatalog")
    while True:
        try:
            return call(request(), timeout=5)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    return bool(ok)


def run_checks(grpc, r, needs_text):
    from google.protobuf import json_format

    results = []
    services = r.services()
    missing = [s for s in SERVICES if s not in services]
    results.append(check(not missing, f"reflection lists {len(services)} services: "
                         f"{', '.join(sorted(services))}"
                         + (f" (missing {', '.join(missing)})" if missing else "")))

    estimate, EstimateRequest, _ = r.unary("ramtid.v1.EstimationService", "Estimate")

    # The contract's own example, as it is: bare context values, snake_case names.
    contract = json_format.Parse(CONTRACT_EXAMPLE, EstimateRequest())
    ctx = {k: json_format.MessageToDict(v) for k, v in contract.context.items()}
    results.append(check(
        ctx == {"age": 84, "lives_alone": True, "cognition": 1, "mobility": 2}
        and [n.code for n in contract.needs] == ["MORNING_CARE", "SHOWER", "TRANSFER", "CLEANING"]
        and contract.needs[2].staff == 2 and contract.needs[3].per_week == 0.5
        and contract.needs[0].slot == "morning",
        f"the data contract's needs example parses into the reflected EstimateRequest: "
        f"context {ctx}"))

    # A needs object of the same shape, for the shipped model's catalog: estimated.
    request = json_format.Parse(needs_text, EstimateRequest())
    try:
        answer = estimate(request, timeout=10)
        e = answer.estimate
        results.append(check(
            e.weekly_min > 0 and e.recipient_id == request.recipient_id and e.model.name,
            f"Estimate answers {e.weekly_min:.1f} min/week (schablon {e.schablon_weekly_min:.1f}, "
            f"P10-P90 {e.p10_weekly_min:.1f}-{e.p90_weekly_min:.1f}) from model "
            f"{e.model.name}/{e.model.version}"))
        as_json = json_format.MessageToJson(answer)
        results.append(check('"weeklyMin"' in as_json,
                             f"the answer prints as proto3 JSON ({len(as_json)} characters)"))
    except grpc.RpcError as err:
        results.append(check(False, f"Estimate failed: {err.code().name}: {err.details()}"))

    # JSON null is an unset value: refused as missing, with the field named.
    obj = json.loads(needs_text)
    name = next(iter(obj.get("context") or {"age": None}))
    obj.setdefault("context", {})[name] = None
    try:
        estimate(json_format.ParseDict(obj, EstimateRequest()), timeout=10)
        results.append(check(False, f"context.{name} = null was accepted"))
    except grpc.RpcError as err:
        results.append(check(
            err.code() == grpc.StatusCode.INVALID_ARGUMENT and f"context.{name}" in err.details(),
            f"context.{name} = null is refused: {err.code().name}: {err.details()}"))
    return all(results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", help="a running server, host:port")
    ap.add_argument("--server", help="start this ramtid binary (serve) instead of --addr")
    ap.add_argument("--models", default="models", help="models root for --server")
    ap.add_argument("--needs", default=str(ROOT / "examples" / "estimate_request.json"),
                    help="a needs object as JSON (data contract, section 3) to estimate")
    args = ap.parse_args()
    if bool(args.addr) == bool(args.server):
        ap.error("give exactly one of --addr and --server")
    try:
        needs_text = Path(args.needs).read_text(encoding="utf-8")
    except OSError as e:
        ap.error(f"cannot read --needs {args.needs}: {e.strerror}")

    import grpc

    proc, addr = (None, args.addr)
    if args.server:
        proc, addr = start_server(args.server, args.models)
    try:
        with grpc.insecure_channel(addr) as channel:
            r = Reflected(grpc, channel)
            wait_ready(grpc, r, 30)
            return 0 if run_checks(grpc, r, needs_text) else 1
    except grpc.RpcError as err:
        print(f"FAIL {addr}: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
