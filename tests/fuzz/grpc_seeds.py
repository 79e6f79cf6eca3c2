#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_grpc.c into tests/fuzz/corpus/grpc/:
one input per method and case, in the target's layout (method byte, metadata
entries, the request message).  Messages come from proto/ through protoc's
Python output, so they are what a gRPC client would send.
Usage: tests/fuzz/grpc_seeds.py (from anywhere)."""
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fuzz" / "corpus" / "grpc"
SCRIPT = (REPO / "tests" / "fuzz" / "corpus" / "script" / "add_one_helper.apply_resource.sh").read_bytes().decode()

tmp = tempfile.mkdtemp()
subprocess.run(["protoc", "--python_out=" + tmp, "--proto_path=proto", "proto/udf.proto", "proto/resource.proto",
                "proto/health.proto"], cwd=REPO, check=True)
sys.path.insert(0, tmp)
udf = importlib.import_module("udf_pb2")
res = importlib.import_module("resource_pb2")
health = importlib.import_module("health_pb2")

MD = [("x-databend-tenant", "tenant-a"), ("x-databend-user", "'root'@'%'"), ("x-databend-query-id", "q-1")]


def seed(name, method, msg, md=MD, marker=None):
    md = list(md) + ([marker] if marker else [])
    b = bytes([method, len(md)])
    for k, v in md:
        k, v = k.encode(), v.encode()
        b += bytes([len(k)]) + k + bytes([len(v)]) + v
    b += msg if isinstance(msg, bytes) else msg.SerializeToString()
    (OUT / name).write_bytes(b)


def spec(code="def f(x):\n    return x\n", imports=()):
    return json.dumps({"version": 1, "kind": "udf", "language": "python", "handler": "f",
                       "input_types": ["INT NULL"], "result_type": "INT NULL", "imports": list(imports),
                       "packages": [], "runtime_version": "3", "code": code}, separators=(",", ":"))


OUT.mkdir(parents=True, exist_ok=True)
uv = ("udf_client_version", "v1")
seed("apply_ok", 0, udf.ApplyUdfResourceRequest(spec=spec()), marker=uv)
seed("apply_import", 0, udf.ApplyUdfResourceRequest(
    spec=spec(imports=["@s/a.py"]),
    imports=[udf.UdfImport(location="@s/a.py", url="http://127.0.0.1:9/a.py?X-Amz-Signature=x", tag='"e1"')]), marker=uv)
seed("apply_bad_spec", 0, udf.ApplyUdfResourceRequest(spec='{"version":1,"kind":"udf"'), marker=uv)
seed("apply_no_tenant", 0, udf.ApplyUdfResourceRequest(spec=spec()), md=MD[1:])
seed("apply_two_tenants", 0, udf.ApplyUdfResourceRequest(spec=spec()), md=MD + [("x-databend-tenant", "b")])
seed("apply_not_protobuf", 0, b"\xff\xff\xff\x0f")
rv = ("resource_client_version", "v1")
seed("resource_script", 1, res.ApplyResourceRequest(type="udf", script=SCRIPT), marker=rv)
seed("resource_type", 1, res.ApplyResourceRequest(type="tcp", script=SCRIPT), marker=rv)
seed("resource_empty", 1, res.ApplyResourceRequest(), marker=rv)
wv = ("worker_client_version", "v1")
seed("create_statement", 2, res.CreateWorkerRequest(tenant_id="tenant-a", name="w1", tags={"team": "a"},
                                                    options={"size": "small"}), marker=wv)
seed("create_script", 2, res.CreateWorkerRequest(tenant_id="tenant-a", name="f", type="udf", script=SCRIPT,
                                                 if_not_exists=True), marker=wv)
seed("create_bad_name", 2, res.CreateWorkerRequest(tenant_id="tenant-a", name="../x"), marker=wv)
seed("alter_suspend", 3, res.AlterWorkerRequest(tenant_id="tenant-a", name="w1", set_tags={"x": "y"},
                                                unset_options=["size"], state_action=1), marker=wv)
seed("alter_missing", 3, res.AlterWorkerRequest(tenant_id="tenant-a", name="nope"), marker=wv)
seed("drop", 4, res.DropWorkerRequest(tenant_id="tenant-a", name="w1", if_exists=True), marker=wv)
seed("list", 5, res.ListWorkersRequest(tenant_id="tenant-a"), marker=wv)
seed("list_other_tenant", 5, res.ListWorkersRequest(tenant_id="tenant-b"), marker=wv)
seed("health", 6, health.HealthCheckRequest(service=""), md=[])
seed("health_unknown", 6, health.HealthCheckRequest(service="x.Y"), md=[])
seed("unknown", 7, b"/taskproto.TaskService/ExecuteTask", md=[])
print("wrote %d seeds to %s" % (len(list(OUT.iterdir())), OUT))
