#!/usr/bin/env python3
"""grpc C-core peer for the interop tests, on Debian's python3-grpcio and python3-protobuf (no generated code).

  peer.py server DESCRIPTORS          serves switch.interop.Interop on 127.0.0.1:0, prints {"port": N}, runs until stdin closes
  peer.py client DESCRIPTORS TARGET SCENARIO   runs one scenario against TARGET, prints one JSON line

DESCRIPTORS is a serialized google.protobuf.FileDescriptorSet (dependencies first) written by the C# test: the
message classes are built from it at run time, so this peer needs neither protoc nor grpc_health/grpc_reflection.
Behaves like the C# InteropService: sleep_ms, fail_code/fail_message (trailer x-fail: yes), reply_bytes, count.
"""
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

MAX_RECEIVE_BYTES = 2 * 1024 * 1024
SERVICE = "switch.interop.Interop"


def emit(obj):
    print(json.dumps(obj), flush=True)


def pool_from(files):
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.Add(f)
    return pool


def message_class(pool, name):
    descriptor = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def load(path):
    with open(path, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file
    pool = pool_from(files)
    return lambda name: message_class(pool, name)


# ---- server ----

def serve(types):
    Request, Reply = types("switch.interop.EchoRequest"), types("switch.interop.EchoReply")

    def reply(req, index):
        return Reply(text=req.text, index=index, payload=bytes(req.reply_bytes) if req.reply_bytes > 0 else req.payload)

    def fail(req, context):
        context.set_trailing_metadata((("x-fail", "yes"),))
        context.abort(next(c for c in grpc.StatusCode if c.value[0] == req.fail_code), req.fail_message)

    def unary(req, context):
        if req.sleep_ms > 0:
            deadline = time.monotonic() + req.sleep_ms / 1000
            while time.monotonic() < deadline and context.is_active():
                time.sleep(0.01)
        if req.fail_code != 0:
            fail(req, context)
        echo = dict(context.invocation_metadata()).get("x-echo")
        if echo is not None:
            context.set_trailing_metadata((("x-echo", echo),))
        return reply(req, 0)

    def server_stream(req, context):
        for i in range(req.count):
            yield reply(req, i)
        if req.fail_code != 0:
            fail(req, context)

    def client_stream(requests, context):
        count, size = 0, 0
        for req in requests:
            count += 1
            size += len(req.payload)
        return Reply(text=f"{count}:{size}", index=count)

    def bidi(requests, context):
        for index, req in enumerate(requests):
            if req.fail_code != 0:
                fail(req, context)
            yield reply(req, index)

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, Request.FromString, Reply.SerializeToString),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, Request.FromString, Reply.SerializeToString),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, Request.FromString, Reply.SerializeToString),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, Request.FromString, Reply.SerializeToString),
    })
    # Answers in gzip whenever the client accepts it: our client must read compressed responses.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=(handler,), compression=grpc.Compression.Gzip,
                         options=(("grpc.max_receive_message_length", MAX_RECEIVE_BYTES), ("grpc.max_send_message_length", -1)))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    emit({"port": port})
    sys.stdin.read()  # until the test closes our stdin (it also kills us on dispose)
    server.stop(0)


# ---- client ----

def error_result(e):
    trailers = dict(e.trailing_metadata() or ())
    return {"ok": False, "code": e.code().value[0], "details": e.details(), "failTrailer": trailers.get("x-fail")}


def run_client(types, target, scenario):
    Request, Reply = types("switch.interop.EchoRequest"), types("switch.interop.EchoReply")
    gzip = scenario.startswith("gzip")
    channel = grpc.insecure_channel(target, compression=grpc.Compression.Gzip if gzip else None,
                                    options=(("grpc.max_receive_message_length", 8 * 1024 * 1024),))
    path = "/" + SERVICE + "/"
    unary = channel.unary_unary(path + "Unary", Request.SerializeToString, Reply.FromString)
    server_stream = channel.unary_stream(path + "ServerStream", Request.SerializeToString, Reply.FromString)
    client_stream = channel.stream_unary(path + "ClientStream", Request.SerializeToString, Reply.FromString)
    bidi = channel.stream_stream(path + "Bidi", Request.SerializeToString, Reply.FromString)

    def call(fn):
        try:
            return fn()
        except grpc.RpcError as e:
            return error_result(e)

    def scenario_unary():
        def go():
            response, c = unary.with_call(Request(text="hello from c-core"), metadata=(("x-echo", "from-c-core"),), timeout=10)
            return {"ok": True, "code": 0, "text": response.text, "echo": dict(c.trailing_metadata()).get("x-echo")}
        return call(go)

    def scenario_server_stream():
        def go():
            replies = list(server_stream(Request(text="s", count=1000), timeout=30))
            return {"ok": True, "code": 0, "count": len(replies), "inOrder": all(r.index == i for i, r in enumerate(replies))}
        return call(go)

    def scenario_client_stream():
        def go():
            r = client_stream(iter([Request(payload=bytes(100)) for _ in range(500)]), timeout=30)
            return {"ok": True, "code": 0, "text": r.text}
        return call(go)

    def scenario_bidi():
        def go():
            replies = list(bidi(iter([Request(text=f"b{i}") for i in range(5000)]), timeout=60))
            return {"ok": True, "code": 0, "count": len(replies),
                    "inOrder": all(r.index == i and r.text == f"b{i}" for i, r in enumerate(replies))}
        return call(go)

    def scenario_bidi_error():
        got = []

        def go():
            for r in bidi(iter([Request(text="a"), Request(text="b", fail_code=9, fail_message="precondition failed: b")]), timeout=30):
                got.append(r.text)
            return {"ok": True, "code": 0}
        result = call(go)
        result["replies"] = got
        return result

    def scenario_deadline():
        unary(Request(text="warm-up"), timeout=10)  # connect first: the deadline is spent at the server
        return call(lambda: unary(Request(text="slow", sleep_ms=20000), timeout=1.0) and {"ok": True, "code": 0})

    def scenario_statuses():
        # Every status but OK, as an error from a unary call and after messages from a server stream.
        results = []
        for code in range(1, 17):
            message = f"status {code}: ü 100%"
            u = call(lambda: unary(Request(fail_code=code, fail_message=message), timeout=10) and {"ok": True, "code": 0})
            got = []

            def stream():
                for r in server_stream(Request(count=2, fail_code=code, fail_message=message), timeout=10):
                    got.append(r.index)
                return {"ok": True, "code": 0}
            s = call(stream)
            results.append({"code": code, "unaryCode": u["code"], "unaryDetails": u.get("details"), "failTrailer": u.get("failTrailer"),
                            "streamCode": s["code"], "streamDetails": s.get("details"), "streamMessages": len(got)})
        return {"ok": True, "code": 0, "results": results}

    def scenario_gzip():
        # Channel-wide gzip: every request message compressed; the server may answer in gzip too.
        def go():
            r = unary(Request(text="gz", payload=bytes(1024 * 1024), reply_bytes=1024 * 1024), timeout=30)
            n = len(list(bidi(iter([Request(text=f"g{i}", payload=bytes(1000)) for i in range(1000)]), timeout=60)))
            return {"ok": True, "code": 0, "text": r.text, "payloadBytes": len(r.payload), "bidi": n}
        return call(go)

    def scenario_gzip_over():
        # 3 MiB of zeros is a few KiB in gzip: under the server's 2 MiB frame limit, over it once inflated.
        return call(lambda: unary(Request(payload=bytes(3 * 1024 * 1024)), timeout=30) and {"ok": True, "code": 0})

    def scenario_health():
        Check, Answer = types("grpc.health.v1.HealthCheckRequest"), types("grpc.health.v1.HealthCheckResponse")
        check = channel.unary_unary("/grpc.health.v1.Health/Check", Check.SerializeToString, Answer.FromString)
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch", Check.SerializeToString, Answer.FromString)
        overall = check(Check(service=""), timeout=10).status
        service = check(Check(service=SERVICE), timeout=10).status
        unknown = call(lambda: check(Check(service="no.such.Service"), timeout=10) and {"ok": True, "code": 0})
        stream = watch(Check(service=SERVICE), timeout=30)
        first = next(stream).status
        emit({"watching": first})  # the test now changes the status
        second = next(stream).status
        stream.cancel()
        return {"ok": True, "code": 0, "overall": overall, "service": service, "unknownCode": unknown["code"],
                "watchFirst": first, "watchSecond": second}

    def scenario_reflection(version):
        # As grpcurl does: list the services, fetch the file of each by symbol, build a pool from the answers alone,
        # and call a method with message types made from the reflected descriptors.
        Ask, Answer = types("grpc.reflection.v1.ServerReflectionRequest"), types("grpc.reflection.v1.ServerReflectionResponse")
        info = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo", Ask.SerializeToString, Answer.FromString)
        listed = [s.name for a in info(iter([Ask(list_services="")]), timeout=10) for s in a.list_services_response.service]
        files = {}
        answers = list(info(iter([Ask(file_containing_symbol=name) for name in listed]
                                  + [Ask(file_by_filename="no/such.proto"), Ask(file_containing_symbol="switch.interop.Interop.Unary")]), timeout=10))
        for a in answers:
            for raw in a.file_descriptor_response.file_descriptor_proto:
                f = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files.setdefault(f.name, f)
        pool = descriptor_pool.DescriptorPool()
        pending = dict(files)
        while pending:  # dependencies first
            ready = [f for f in pending.values() if all(d not in pending for d in f.dependency)]
            if not ready:
                raise RuntimeError("reflected files import something no answer carried")
            for f in ready:
                pool.Add(f)
                del pending[f.name]
        methods = {s: [m.name for m in pool.FindServiceByName(s).methods] for s in listed}
        unary_method = pool.FindMethodByName(SERVICE + ".Unary")
        Req, Rep = message_class(pool, unary_method.input_type.full_name), message_class(pool, unary_method.output_type.full_name)
        reflected = channel.unary_unary(path + "Unary", Req.SerializeToString, Rep.FromString)
        text = reflected(Req(text="described"), timeout=10).text
        return {"ok": True, "code": 0, "services": listed, "methods": methods, "missingFileCode": answers[len(listed)].error_response.error_code,
                "lastFile": answers[-1].file_descriptor_response.file_descriptor_proto and
                descriptor_pb2.FileDescriptorProto.FromString(answers[-1].file_descriptor_response.file_descriptor_proto[0]).name,
                "text": text}

    scenarios = {
        "unary": scenario_unary, "server_stream": scenario_server_stream, "client_stream": scenario_client_stream,
        "bidi": scenario_bidi, "bidi_error": scenario_bidi_error, "deadline": scenario_deadline, "statuses": scenario_statuses,
        "gzip": scenario_gzip, "gzip_over": scenario_gzip_over, "health": scenario_health,
        "reflection_v1": lambda: scenario_reflection("v1"), "reflection_v1alpha": lambda: scenario_reflection("v1alpha"),
    }
    try:
        emit({"scenario": scenario, **scenarios[scenario]()})
    finally:
        channel.close()


def main():
    mode, descriptors = sys.argv[1], sys.argv[2]
    types = load(descriptors)
    if mode == "server":
        serve(types)
    else:
        run_client(types, sys.argv[3], sys.argv[4])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one JSON line either way: the test reports it
        import traceback
        emit({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})
        sys.exit(1)
