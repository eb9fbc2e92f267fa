"""The Python peers, run by bench/compare under the interpreter that has them (.venv-peers/bin/python,
or any python3 given with --python): PyTorch's scaled_dot_product_attention, ONNX Runtime's
Attention operator and OpenVINO's ScaledDotProductAttention.

  python_peers.py versions            one JSON line: {"torch": "2.15.0", "onnxruntime": ..., ...} or why not
  python_peers.py run JOBS_JSON       one JSON line per job, in order

A job is {"peer", "precision", "batch", "q_heads", "kv_heads", "seq_q", "seq_k", "head_dim", "causal",
"threads", "min_time", "cold_bytes", and "check_dir" (+ "out") to check instead of time}. Checked, a
peer reads check_dir/q.bin, k.bin, v.bin (fp32 BHSD) and writes its output to check_dir/out (fp32
BHSD); timed, it builds its session or graph outside the timed region, makes seeded inputs in
[-1, 1], calls once to warm up, then keeps the fastest call over min_time seconds (at least 3 calls,
2 when one call takes over a second). Decode shapes cycle through copies of K and V totalling
cold_bytes, so each call reads them from memory, as simdattn_bench does.

A serving job has "sequences": [[queries, keys], ...] instead of batch, seq_q and seq_k: the peer is
prepared for each sequence on its own (batch 1, its own K and V) and one timed call runs them all,
one after another, as an engine without paged or packed attention serves a batch. Checked, sequence
i reads and writes check_dir/seq<i>/ as above.

What each peer computes, the causal alignment included, is in the "computed" field of its answer.
This file imports nothing from the repository: it must run under an interpreter outside it."""
import json
import math
import sys
import time

PRECISIONS = ("fp32", "bf16", "fp16")
# A call slower than this after the warm-up is timed once more only (the warm-up is not counted).
SLOW_CALL_SECONDS = 10.0


def numpy_inputs(job):
    """(q, [(k, v), ...]) as fp32 numpy arrays: the check's files, or seeded values and cold copies."""
    import numpy
    q_shape = (job["batch"], job["q_heads"], job["seq_q"], job["head_dim"])
    kv_shape = (job["batch"], job["kv_heads"], job["seq_k"], job["head_dim"])
    if job.get("check_dir"):
        read = lambda name, shape: numpy.fromfile(f"{job['check_dir']}/{name}.bin", dtype=numpy.float32).reshape(shape)
        return read("q", q_shape), [(read("k", kv_shape), read("v", kv_shape))]
    generator = numpy.random.default_rng(0)
    uniform = lambda shape: generator.uniform(-1.0, 1.0, size=shape).astype(numpy.float32)
    kv_bytes = 2 * 4 * math.prod(kv_shape)
    copies = max(1, math.ceil(job.get("cold_bytes", 0) / kv_bytes))
    return uniform(q_shape), [(uniform(kv_shape), uniform(kv_shape)) for _ in range(copies)]


def bottom_right_mask(seq_q, seq_k):
    """Boolean [Sq, Sk]: key j is seen by query i when j <= i + Sk - Sq (simdattn's bottom_right)."""
    import numpy
    return numpy.tril(numpy.ones((seq_q, seq_k), dtype=bool), k=seq_k - seq_q)


def time_calls(call, copies, min_time):
    """Warm-up, then the fastest of calls over min_time seconds; call(copy_index) runs one."""
    start = time.perf_counter()
    call(0)
    warm_up = time.perf_counter() - start
    # Slow calls get fewer tries, so that the slowest peer on 'long' does not take the run's hour.
    min_calls = 1 if warm_up > SLOW_CALL_SECONDS else 2 if warm_up > 1.0 else 3
    best, total, calls = math.inf, 0.0, 0
    while total < min_time or calls < min_calls:
        start = time.perf_counter()
        call((calls + 1) % copies)
        seconds = time.perf_counter() - start
        best, total, calls = min(best, seconds), total + seconds, calls + 1
    return best, calls


# Each peer: prepare(job, q, kv_pairs) -> (call(copy) -> output as numpy fp32 BHSD or None, computed, version)

def prepare_torch(job, q, kv_pairs):
    import torch
    import torch.nn.functional as functional
    torch.set_num_threads(job["threads"])
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[job["precision"]]
    queries = torch.from_numpy(q).to(dtype)
    pairs = [(torch.from_numpy(k).to(dtype), torch.from_numpy(v).to(dtype)) for k, v in kv_pairs]
    options, how = {}, "no mask"
    if job["causal"] and job["seq_q"] == job["seq_k"]:
        options["is_causal"], how = True, "is_causal=True (top-left, the same mask as bottom-right when Sq = Sk)"
    elif job["causal"]:
        options["attn_mask"] = torch.from_numpy(bottom_right_mask(job["seq_q"], job["seq_k"]))
        how = "an explicit boolean bottom-right causal mask (is_causal is top-left)"
    if job["q_heads"] != job["kv_heads"]:
        options["enable_gqa"] = True
        how += ", enable_gqa=True (K/V not copied)"

    def call(copy):
        with torch.inference_mode():
            out = functional.scaled_dot_product_attention(queries, *pairs[copy], **options)
        return out

    def output():
        return call(0).float().numpy()

    computed = (f"torch {torch.__version__}: F.scaled_dot_product_attention, {job['precision']} Q/K/V/O, {how}, "
                f"torch.set_num_threads({job['threads']})")
    return call, output, computed, torch.__version__


def prepare_onnxruntime(job, q, kv_pairs):
    import numpy
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper
    element = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16}.get(job["precision"])
    if element is None:
        raise RuntimeError(f"ONNX Runtime's CPU Attention has no {job['precision']} kernel here")
    np_type = numpy.float32 if job["precision"] == "fp32" else numpy.float16
    batch, hq, hkv, sq, sk, d = (job[key] for key in ("batch", "q_heads", "kv_heads", "seq_q", "seq_k", "head_dim"))
    inputs = [helper.make_tensor_value_info("q", element, [batch, hq, sq, d]),
              helper.make_tensor_value_info("k", element, [batch, hkv, sk, d]),
              helper.make_tensor_value_info("v", element, [batch, hkv, sk, d])]
    names = ["q", "k", "v"]
    attributes = {"scale": 1.0 / math.sqrt(d)}
    how = "no mask"
    if job["causal"] and sq == sk:
        attributes["is_causal"], how = 1, "is_causal=1 (top-left, the same mask as bottom-right when Sq = Sk)"
    elif job["causal"]:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, [sq, sk]))
        names.append("mask")
        how = "an explicit boolean bottom-right causal mask (is_causal is top-left)"
    if hq != hkv:
        how += ", grouped heads broadcast by the operator (K/V not copied)"
    node = helper.make_node("Attention", names, ["out"], **attributes)
    graph = helper.make_graph([node], "attention", inputs, [helper.make_tensor_value_info("out", element, [batch, hq, sq, d])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = min(model.ir_version, 10)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = job["threads"]
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out = numpy.empty((batch, hq, sq, d), dtype=np_type)
    queries = numpy.ascontiguousarray(q.astype(np_type))
    bindings = []
    for k, v in kv_pairs:
        binding = session.io_binding()
        binding.bind_cpu_input("q", queries)
        binding.bind_cpu_input("k", numpy.ascontiguousarray(k.astype(np_type)))
        binding.bind_cpu_input("v", numpy.ascontiguousarray(v.astype(np_type)))
        if "mask" in names:
            binding.bind_cpu_input("mask", bottom_right_mask(sq, sk))
        binding.bind_output("out", "cpu", 0, np_type, out.shape, out.ctypes.data)
        bindings.append(binding)

    def call(copy):
        session.run_with_iobinding(bindings[copy])

    def output():
        call(0)
        return out.astype(numpy.float32)

    computed = (f"onnxruntime {onnxruntime.__version__}: ONNX Attention (opset 23, 4-D BHSD inputs), {job['precision']} "
                f"Q/K/V/O, {how}, CPUExecutionProvider, intra_op_num_threads={job['threads']}, IO binding")
    return call, output, computed, onnxruntime.__version__


def prepare_openvino(job, q, kv_pairs):
    import numpy
    import openvino
    import openvino.opset13 as ops
    hint = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[job["precision"]]
    batch, hq, hkv, sq, sk, d = (job[key] for key in ("batch", "q_heads", "kv_heads", "seq_q", "seq_k", "head_dim"))
    group = hq // hkv
    # Grouped heads: Q as [B, Hkv, G, Sq, D] against K, V as [B, Hkv, 1, Sk, D], so the operator's
    # broadcast shares each kv head among its G query heads without copying K and V.
    q_param = ops.parameter([batch, hkv, group, sq, d], openvino.Type.f32, name="q")
    k_param = ops.parameter([batch, hkv, 1, sk, d], openvino.Type.f32, name="k")
    v_param = ops.parameter([batch, hkv, 1, sk, d], openvino.Type.f32, name="v")
    parameters = [q_param, k_param, v_param]
    # No scale input: the operator's default is 1/sqrt(D), as simdattn's.
    how = "no mask"
    if job["causal"] and sq == sk:
        node = ops.scaled_dot_product_attention(q_param, k_param, v_param, causal=True)
        how = "causal=True (top-left, the same mask as bottom-right when Sq = Sk)"
    elif job["causal"]:
        mask = ops.constant(bottom_right_mask(sq, sk))
        node = ops.scaled_dot_product_attention(q_param, k_param, v_param, mask, causal=False)
        how = "an explicit boolean bottom-right causal mask (causal=True is top-left)"
    else:
        node = ops.scaled_dot_product_attention(q_param, k_param, v_param, causal=False)
    if group > 1:
        how += ", grouped heads broadcast as [B, Hkv, G, S, D] (K/V not copied)"
    model = openvino.Model([node.output(0)], parameters, "attention")
    core = openvino.Core()
    config = {"INFERENCE_NUM_THREADS": job["threads"], "INFERENCE_PRECISION_HINT": hint,
              "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    compiled = core.compile_model(model, "CPU", config)
    queries = numpy.ascontiguousarray(q.reshape(batch, hkv, group, sq, d))
    requests = []
    for k, v in kv_pairs:
        request = compiled.create_infer_request()
        for name, array in (("q", queries), ("k", k.reshape(batch, hkv, 1, sk, d)), ("v", v.reshape(batch, hkv, 1, sk, d))):
            request.set_tensor(name, openvino.Tensor(numpy.ascontiguousarray(array), shared_memory=True))
        requests.append(request)

    def call(copy):
        requests[copy].infer()

    def output():
        call(0)
        return numpy.array(requests[0].get_output_tensor(0).data, dtype=numpy.float32).reshape(batch, hq, sq, d)

    ran = compiled.get_property("INFERENCE_PRECISION_HINT")
    ran = ran.get_type_name() if hasattr(ran, "get_type_name") else str(ran)
    version = openvino.__version__.split("-")[0]
    computed = (f"openvino {version}: opset13 ScaledDotProductAttention, fp32 inputs, "
                f"INFERENCE_PRECISION_HINT={hint} (the plugin ran {ran}), {how}, CPU plugin, "
                f"INFERENCE_NUM_THREADS={job['threads']}, one stream")
    return call, output, computed, version


PEERS = {"torch": prepare_torch, "onnxruntime": prepare_onnxruntime, "openvino": prepare_openvino}


def run_serving_job(job):
    """A serving job's answer: the peer called once per sequence (see the module's docstring)."""
    calls, described, version = [], [], ""
    for index, (queries, keys) in enumerate(job["sequences"]):
        # A sequence's single query is its last, which sees every key: no mask to build or apply.
        one = dict(job, batch=1, seq_q=queries, seq_k=keys, causal=job["causal"] and queries > 1, cold_bytes=0)
        if job.get("check_dir"):
            one["check_dir"] = f"{job['check_dir']}/seq{index}"
        q, kv_pairs = numpy_inputs(one)
        call, output, computed_here, version = PEERS[job["peer"]](one, q, kv_pairs)
        if job.get("check_dir"):
            output().astype("float32").tofile(f"{one['check_dir']}/{job['out']}")
        # The whole prepared call is kept: ONNX Runtime's IO binding and OpenVINO's shared tensors
        # point into the arrays the output function and the inputs hold.
        calls.append((call, output, q, kv_pairs))
        if computed_here not in described:
            described.append(computed_here)  # sequences differ in their mask: each way is said
    computed = (" / ".join(described) + f"; one call per sequence ({len(calls)} sequences, each prepared on its "
                "own outside the timing)")
    if job.get("check_dir"):
        return {"ok": True, "checked": True, "computed": computed, "version": version}

    def call_all(_):
        for call, _, _, _ in calls:
            call(0)

    seconds, count = time_calls(call_all, 1, job["min_time"])
    return {"ok": True, "seconds": seconds, "calls": count, "computed": computed, "version": version}


def run_job(job):
    """One job's answer as a dict; an exception becomes {"ok": False, "error"}."""
    try:
        if "sequences" in job:
            return run_serving_job(job)
        q, kv_pairs = numpy_inputs(job)
        call, output, computed, version = PEERS[job["peer"]](job, q, kv_pairs)
        if job.get("check_dir"):
            output().astype("float32").tofile(f"{job['check_dir']}/{job['out']}")
            return {"ok": True, "checked": True, "computed": computed, "version": version}
        seconds, calls = time_calls(call, len(kv_pairs), job["min_time"])
        return {"ok": True, "seconds": seconds, "calls": calls, "kv_copies": len(kv_pairs),
                "computed": computed, "version": version}
    except Exception as error:  # reported, never dropped: the report says why this peer has no figure
        message = str(error).strip().splitlines()
        return {"ok": False, "error": f"{type(error).__name__}: {message[0] if message else ''}"[:400]}


def versions():
    """Which peers import here, with their versions, or the import error."""
    found = {}
    for name in ("numpy", "torch", "onnxruntime", "openvino", "onnx"):
        try:
            module = __import__(name)
            found[name] = {"version": module.__version__}
        except Exception as error:
            found[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
    return found


def main(argv):
    if len(argv) >= 1 and argv[0] == "versions":
        print(json.dumps({"python": sys.executable, "modules": versions()}), flush=True)
        return 0
    if len(argv) == 2 and argv[0] == "run":
        for job in json.loads(argv[1]):
            print(json.dumps(run_job(job)), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
