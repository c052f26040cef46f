#!/usr/bin/env python3
"""Score a needs.jsonl against a truth.csv through ramtid's gRPC EstimateBatch.

A client that the service's authors did not write in Rust: it generates its stubs from
crates/ramtid-proto/proto/ramtid/v1/ramtid.proto with grpcio-tools at run time (into a temporary folder), so it
proves the wire contract as any other team would use it.

    pip install grpcio grpcio-tools
    # against a running server
    python training/eval_grpc.py --addr 127.0.0.1:50051 --needs needs.jsonl --truth truth.csv
    # or let the script start `ramtid serve` on a free loopback port and stop it after
    python training/eval_grpc.py --server target/debug/ramtid --models models \
        --needs needs.jsonl --truth truth.csv

Prints the model used, the number of needs sets scored, and the error of the weekly minutes
against the truth (MAPE, MAE, bias, P10-P90 coverage) beside the stacked schablon sum's.
Exit status: 0 on success; 1 if the call failed, nothing could be scored, or --max-mape was
exceeded; 2 on bad arguments.
"""

import argparse
import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "crates" / "ramtid-proto" / "proto"
PROTO_FILE = "ramtid/v1/ramtid.proto"


def generate_stubs(out_dir):
    """Compiles the proto into out_dir and imports the generated modules."""
    from grpc_tools import protoc
    import importlib.resources

    include = str(importlib.resources.files("grpc_tools") / "_proto")
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_DIR / PROTO_FILE),
    ])
    if rc != 0:
        raise SystemExit(f"protoc failed on {PROTO_DIR / PROTO_FILE} (exit {rc})")
    sys.path.insert(0, out_dir)
    from ramtid.v1 import ramtid_pb2, ramtid_pb2_grpc  # noqa: E402

    return ramtid_pb2, ramtid_pb2_grpc


def needs_set(pb, obj):
    """A needs object (data contract, section 3) is the proto3 JSON of a NeedsSet as it is."""
    from google.protobuf import json_format

    return json_format.ParseDict(obj, pb.NeedsSet())


def read_needs(pb, path):
    """(items, unreadable lines): a line that is not JSON is reported, not sent."""
    from google.protobuf import json_format

    items, unreadable = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                items.append(needs_set(pb, json.loads(line)))
            except (ValueError, TypeError, AttributeError, json_format.ParseError) as e:
                unreadable.append((line_no, str(e)))
    return items, unreadable


def read_truth(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "recipient_id" not in rows[0] or "true_weekly_min" not in rows[0]:
        raise SystemExit(f"{path}: expected columns recipient_id,true_weekly_min")
    return {r["recipient_id"]: float(r["true_weekly_min"]) for r in rows}


def requests(pb, items, chunk, model):
    for i in range(0, len(items), chunk):
        yield pb.EstimateBatchRequest(
            model=model if i == 0 else "",
            detail=pb.DETAIL_TOTALS,
            items=items[i:i + chunk],
        )


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
    proc = subprocess.Popen([binary, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    return proc, f"127.0.0.1:{port}"


def wait_ready(grpc, pb, pb_grpc, channel, seconds):
    """Waits until the server answers with a model (GetCatalog stops being UNAVAILABLE)."""
    deadline = time.monotonic() + seconds
    grpc.channel_ready_future(channel).result(timeout=seconds)
    stub = pb_grpc.ModelServiceStub(channel)
    while True:
        try:
            return stub.GetCatalog(pb.GetCatalogRequest(), timeout=5)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def score(results, truth):
    """Error figures of weekly minutes against the truth, for the model and the schablon."""
    pairs = [(r, truth[r.recipient_id]) for r in results if r.recipient_id in truth]
    pairs = [(r, t) for r, t in pairs if t > 0]
    n = len(pairs)
    if n == 0:
        return None

    def figures(pred):
        errs = [pred(r) - t for r, t in pairs]
        return {
            "mape": sum(abs(e) / t for e, (_, t) in zip(errs, pairs)) / n,
            "mae_min": sum(abs(e) for e in errs) / n,
            "bias_min": sum(errs) / n,
        }

    model = figures(lambda r: r.weekly_min)
    model["p10_p90_coverage"] = sum(
        1 for r, t in pairs if r.p10_weekly_min <= t <= r.p90_weekly_min) / n
    return {"scored": n, "model": model, "schablon": figures(lambda r: r.schablon_weekly_min)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addr", help="a running server, host:port")
    ap.add_argument("--server", help="start this ramtid binary (serve) instead of --addr")
    ap.add_argument("--models", default="models", help="models root for --server")
    ap.add_argument("--needs", required=True, help="needs.jsonl (data contract, section 4)")
    ap.add_argument("--truth", required=True, help="truth.csv: recipient_id,true_weekly_min,...")
    ap.add_argument("--model", default="", help="model selector (default: production)")
    ap.add_argument("--chunk", type=int, default=500, help="needs sets per stream message")
    ap.add_argument("--timeout", type=float, default=120, help="seconds for the whole batch")
    ap.add_argument("--max-mape", type=float, help="fail if the model's MAPE is above this share")
    ap.add_argument("--json", help="write the figures here as JSON")
    args = ap.parse_args()
    if bool(args.addr) == bool(args.server):
        ap.error("give exactly one of --addr and --server")

    import grpc

    proc = None
    with tempfile.TemporaryDirectory(prefix="ramtid-stubs-") as stubs:
        pb, pb_grpc = generate_stubs(stubs)
        addr = args.addr
        if args.server:
            proc, addr = start_server(args.server, args.models)
        try:
            with grpc.insecure_channel(addr) as channel:
                t0 = time.monotonic()
                wait_ready(grpc, pb, pb_grpc, channel, 30)
                ready_s = time.monotonic() - t0
                items, unreadable = read_needs(pb, args.needs)
                truth = read_truth(args.truth)
                stub = pb_grpc.EstimationServiceStub(channel)
                t1 = time.monotonic()
                results, errors, model = [], [], None
                try:
                    for resp in stub.EstimateBatch(
                            requests(pb, items, max(1, args.chunk), args.model),
                            timeout=args.timeout):
                        model = f"{resp.model.name}/{resp.model.version}"
                        for r in resp.results:
                            if r.WhichOneof("outcome") == "estimate":
                                results.append(r.estimate)
                            else:
                                errors.append(r)
                except grpc.RpcError as e:
                    print(f"EstimateBatch failed: {e.code().name}: {e.details()}", file=sys.stderr)
                    return 1
                batch_s = time.monotonic() - t1
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()

    for line_no, msg in unreadable:
        print(f"{args.needs}, line {line_no}: not a needs object: {msg}", file=sys.stderr)
    for r in errors[:20]:
        fields = "; ".join(f"{v.field}: {v.description}" for v in r.error.violations)
        print(f"item {r.index} ({r.recipient_id}): {fields or r.error.message}", file=sys.stderr)
    figures = score(results, truth)
    sent = len(items)
    print(f"model {model}; {sent} needs sets sent in {batch_s:.2f} s "
          f"({sent / batch_s if batch_s > 0 else float('nan'):.0f}/s; server ready after {ready_s:.2f} s); "
          f"{len(results)} estimated, {len(errors)} item errors, {len(unreadable)} unreadable lines")
    if figures is None:
        print("nothing could be scored: no recipient_id of the results is in the truth", file=sys.stderr)
        return 1
    m, s = figures["model"], figures["schablon"]
    print(f"scored {figures['scored']} recipients against {args.truth}")
    print(f"  ramtid:   MAPE {100 * m['mape']:5.1f}%  MAE {m['mae_min']:7.1f} min/week  "
          f"bias {m['bias_min']:+7.1f}  P10-P90 coverage {100 * m['p10_p90_coverage']:.0f}%")
    print(f"  schablon: MAPE {100 * s['mape']:5.1f}%  MAE {s['mae_min']:7.1f} min/week  "
          f"bias {s['bias_min']:+7.1f}")
    if args.json:
        figures.update({"model_version": model, "sent": sent, "item_errors": len(errors),
                        "unreadable_lines": len(unreadable), "seconds": batch_s})
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if args.max_mape is not None and not (m["mape"] <= args.max_mape):
        print(f"MAPE {m['mape']:.3f} is above --max-mape {args.max_mape}", file=sys.stderr)
        return 1
    if math.isnan(m["mape"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
