"""The peers users would pick instead of simdattn: PyTorch, ONNX Runtime, OpenVINO and llama.cpp's
ggml, found, checked against simdattn's reference, and timed shape by shape between simdattn's runs.

Where they come from: bench/peers/install puts them in .venv-peers/ (the Python peers under its
bin/python, ggml's peer program at bin/simdattn_ggml_peer). --python and --ggml-peer point
elsewhere, e.g. at a python3 with torch and onnxruntime installed by other means.

A peer variant (an implementation in the report: a peer at one precision) counts only after its
output on a small case of the same shape family agreed with simdattn::reference::attention within
its precision's tolerance (CHECK_TOLERANCE); one that disagrees, fails or is missing keeps a line in
the report saying why, and no figure."""
import json
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .shapes import ServingShape, Shape

REPO = Path(__file__).resolve().parent.parent.parent
PYTHON_PEERS = REPO / "bench" / "peers" / "python_peers.py"
DEFAULT_VENV = Path(os.environ.get("SIMDATTN_PEERS_VENV", REPO / ".venv-peers"))


@dataclass(frozen=True)
class Variant:
    """One implementation column of the report: a peer at one precision."""
    name: str        # the report's implementation name
    peer: str        # torch, onnxruntime, openvino or ggml
    precision: str   # what the python adapter or ggml's --kv-type takes
    describes: str   # the precision in the report's words
    not_run: str = ""  # why this variant is never run here, when it is not
    serving: bool = False  # runs the serving shapes, one call per sequence, instead of the standard ones


# In the report's column order. The fp32 variant of each peer has the peer's plain name: the
# targets compare against those; ggml's default F16 cache sits beside its F32 one.
VARIANTS = [
    Variant("torch", "torch", "fp32", "fp32"),
    Variant("torch-bf16", "torch", "bf16", "bf16 Q/K/V/O"),
    Variant("torch-fp16", "torch", "fp16", "fp16 Q/K/V/O"),
    Variant("ggml", "ggml", "f32", "fp32 Q, F32 K/V"),
    Variant("ggml-f16kv", "ggml", "f16", "fp32 Q, F16 K/V (llama.cpp's default cache)"),
    Variant("ggml-q8kv", "ggml", "q8_0", "fp32 Q, Q8_0 K/V (8-bit cache)"),
    Variant("onnxruntime", "onnxruntime", "fp32", "fp32"),
    Variant("onnxruntime-fp16", "onnxruntime", "fp16", "fp16 Q/K/V/O"),
    Variant("onnxruntime-int8kv", "onnxruntime", "int8kv", "8-bit K/V",
            not_run="the quantized KV cache of ONNX Runtime's GroupQueryAttention (k_quant_type) is not "
                    "wired into this adapter: its CPU kernel takes a past/present cache with its own scales, "
                    "which the ONNX Attention graph here has not"),
    Variant("openvino", "openvino", "fp32", "fp32"),
    Variant("openvino-bf16", "openvino", "bf16", "bf16 inference precision (fp32 inputs)"),
    Variant("openvino-f16", "openvino", "fp16", "f16 inference precision (fp32 inputs)"),
    Variant("openvino-u8kv", "openvino", "u8kv", "u8 KV cache",
            not_run="KV_CACHE_PRECISION=u8 applies to the KV cache of a stateful model (ReadValue/Assign "
                    "around SDPA), not to the K and V inputs of the stateless SDPA graph measured here"),
    # The serving shapes: what an engine without paged or packed CPU attention does, one call per
    # sequence over that sequence's own contiguous K/V (each call as the standard shapes' fp32 one).
    Variant("torch-per-sequence", "torch", "fp32", "fp32, one call per sequence", serving=True),
    Variant("onnxruntime-per-sequence", "onnxruntime", "fp32", "fp32, one call per sequence (a session per sequence)",
            serving=True),
    Variant("openvino-per-sequence", "openvino", "fp32", "fp32, one call per sequence (a compiled model per "
            "sequence)", serving=True),
    Variant("openvino-paged", "openvino", "fp32", "PagedAttention over a paged cache", serving=True,
            not_run="the pinned OpenVINO exposes PagedAttention only as the private "
                    "openvino.op._PagedAttentionExtension, which its own vLLM/GenAI model transformation inserts; "
                    "its inputs (block indices, past lengths, subsequence begins, rotation and score options) have "
                    "no documented contract for a graph built by hand"),
    Variant("ggml-per-sequence", "ggml", "f32", "fp32 Q, F32 K/V, one call per sequence", serving=True,
            not_run="the ggml peer program times one shape per process, so a loop over sequences would time "
                    "process launches and graph builds between calls; llama.cpp itself batches sequences through "
                    "its own KV cache and masks, which this peer does not model"),
]
VARIANTS_BY_NAME = {variant.name: variant for variant in VARIANTS}
PEER_NAMES = ["torch", "ggml", "onnxruntime", "openvino"]

# Agreement with simdattn's reference (max |peer − reference| over the small case; outputs are
# weighted means of values in [-1, 1]). An output's error is a few roundings of its precision's
# unit roundoff u times values of magnitude ≤ 1 (inputs, scores of magnitude ≲ 1 after the 1/√D
# scale, softmax weights), plus accumulation over the keys, which flash kernels do in fp32: 16 u
# covers that with room, and stays far below the error of a wrong mask or a wrong head mapping
# (of order 0.1). fp32: 16 × 2^-24 would be 1e-6, under the variation of fp32 summation orders
# across ~10^2 keys, so it is floored at 2e-5. Q8_0 stores each block of 32 as int8 times a scale:
# half a step of max|x|/127 is u ≈ 2^-8, as bf16.
UNIT_ROUNDOFF = {"fp32": 2.0 ** -24, "f32": 2.0 ** -24, "bf16": 2.0 ** -8, "fp16": 2.0 ** -11, "f16": 2.0 ** -11,
                 "q8_0": 2.0 ** -8}
CHECK_TOLERANCE_FLOOR = 2e-5


def check_tolerance(precision):
    return max(16.0 * UNIT_ROUNDOFF[precision], CHECK_TOLERANCE_FLOOR)


def check_case(shape):
    """The small case of a shape's family: its heads, head_dim and mask, with short sequences
    (uneven, so no peer's tile edge is matched by chance) and at most 2 batch entries."""
    if shape.is_decode():
        seq_q, seq_k = shape.seq_q, min(shape.seq_k, 333)
    else:
        seq_q = seq_k = min(shape.seq_q, 77)
    return Shape(shape.name + "-check", min(shape.batch, 2), shape.q_heads, shape.kv_heads, seq_q, seq_k,
                 shape.head_dim, shape.causal)


def serving_check_case(shape):
    """The small case of a serving shape's family: its heads and mask, over three short sequences of
    uneven lengths (one query each for a decoding shape; else a chunk over a longer prefix, a prompt
    of its own, and one query)."""
    if shape.is_decode():
        sequences = ((1, 5), (1, 77), (1, 333))
    else:
        sequences = ((13, 77), (40, 40), (1, 9))
    return ServingShape(shape.name + "-check", shape.q_heads, shape.kv_heads, shape.head_dim, shape.block_size,
                        shape.causal, sequences)


def write_floats(path, count, generator):
    with open(path, "wb") as out:
        out.write(struct.pack(f"<{count}f", *(generator.uniform(-1.0, 1.0) for _ in range(count))))


def read_floats(path):
    data = Path(path).read_bytes()
    return struct.unpack(f"<{len(data) // 4}f", data)


def output_of(folder, name):
    """What variant `name` wrote into a check folder (out-<name>.bin), or None when it wrote nothing."""
    path = os.path.join(folder, f"out-{name}.bin")
    return read_floats(path) if os.path.exists(path) else None


def shape_fields(shape):
    return {"batch": shape.batch, "q_heads": shape.q_heads, "kv_heads": shape.kv_heads, "seq_q": shape.seq_q,
            "seq_k": shape.seq_k, "head_dim": shape.head_dim, "causal": shape.causal}


def serving_fields(shape):
    """A serving job's shape: python_peers.py calls the peer once per (queries, keys) sequence."""
    return {"q_heads": shape.q_heads, "kv_heads": shape.kv_heads, "head_dim": shape.head_dim,
            "causal": shape.causal, "sequences": [list(sequence) for sequence in shape.sequences]}


class Peers:
    """The peers found here, their checks and their timings; stored() is what the run keeps."""

    def __init__(self, python=None, ggml_peer=None, reference=None, only=None, say=print):
        self.say = say
        self.reference = reference
        self.variants = {}   # name -> {"status", "detail", "computed", "version", "checks": [...]}
        self.results = []    # {"implementation", "shape", "threads", "seconds", "calls", "round"}
        self.python, self.modules, python_detail = self._find_python(python)
        self.ggml, ggml_detail = self._find_ggml(ggml_peer)
        for variant in VARIANTS:
            entry = {"peer": variant.peer, "precision": variant.describes, "checks": []}
            if only is not None and variant.peer not in only:
                entry.update(status="disabled", detail=f"not in --peers {','.join(sorted(only))}")
            elif variant.not_run:
                entry.update(status="not run", detail=variant.not_run)
            elif variant.peer == "ggml" and not self.ggml:
                entry.update(status="absent", detail=ggml_detail)
            elif variant.peer != "ggml" and "version" not in self.modules.get(variant.peer, {}):
                why = self.modules.get(variant.peer, {}).get("error") or python_detail
                entry.update(status="absent", detail=f"{variant.peer} does not import: {why}")
            else:
                entry.update(status="pending", detail="")
            self.variants[variant.name] = entry

    def _find_python(self, requested):
        """(interpreter, {module: {version | error}}, why none) for the Python peers."""
        candidates = [requested] if requested else [str(DEFAULT_VENV / "bin" / "python")]
        for python in candidates:
            if not python or not (os.path.exists(python) or shutil.which(python)):
                continue
            try:
                done = subprocess.run([python, str(PYTHON_PEERS), "versions"], capture_output=True, text=True, timeout=600)
                answer = json.loads(done.stdout.strip().splitlines()[-1])
                return answer["python"], answer["modules"], ""
            except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError) as error:
                return None, {}, f"{python} could not run bench/peers/python_peers.py ({error})"
        return None, {}, (f"no peer environment: {candidates[0]} does not exist (run bench/peers/install, or give "
                          "--python with an interpreter that has torch, onnxruntime or openvino)")

    def _find_ggml(self, requested):
        path = Path(requested) if requested else DEFAULT_VENV / "bin" / "simdattn_ggml_peer"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.resolve()), ""
        return None, f"{path} does not exist (bench/peers/install builds it, or give --ggml-peer)"

    def runnable(self, serving=False):
        """Names of the variants still in the running (found, not yet failed): those of the standard
        shapes, or with serving=True those of the serving shapes."""
        return [name for name, entry in self.variants.items() if entry["status"] in ("pending", "measured")
                and VARIANTS_BY_NAME[name].serving == serving]

    def _python_jobs(self, peer, jobs):
        """Runs jobs of one Python peer in one process; one answer per job (an error answer when
        the process died before answering)."""
        try:
            done = subprocess.run([self.python, str(PYTHON_PEERS), "run", json.dumps(jobs)], capture_output=True,
                                  text=True, timeout=3600)
        except subprocess.SubprocessError as error:
            return [{"ok": False, "error": f"{peer}: {error}"}] * len(jobs)
        answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        if len(answers) < len(jobs):
            tail = done.stderr.strip().splitlines()
            why = tail[-1] if tail else f"exit status {done.returncode}"
            answers += [{"ok": False, "error": f"the {peer} process stopped: {why}"}] * (len(jobs) - len(answers))
        return answers

    def _ggml_job(self, variant, shape, threads, min_time=0.0, cold_bytes=0.0, check_dir=None, out=None):
        command = [self.ggml, "--batch", str(shape.batch), "--q-heads", str(shape.q_heads), "--kv-heads",
                   str(shape.kv_heads), "--seq-q", str(shape.seq_q), "--seq-k", str(shape.seq_k), "--head-dim",
                   str(shape.head_dim), "--causal", "1" if shape.causal else "0", "--kv-type", variant.precision,
                   "--threads", str(threads)]
        if check_dir:
            command += ["--check", check_dir, "--out", out]
        else:
            command += ["--min-time", f"{min_time:g}", "--cold-bytes", f"{cold_bytes:.0f}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = done.stderr.strip().splitlines()
            return {"ok": False, "error": tail[-1] if tail else f"exit status {done.returncode}"}
        answer = json.loads(lines[-1])
        answer["ok"] = True
        return answer

    def _run(self, names, shape, threads, **job):
        """Answers of the variants `names` on `shape` (a Shape, or a ServingShape for the serving
        variants), keyed by name: Python peers one process per peer, ggml one process per variant."""
        answers = {}
        serving = isinstance(shape, ServingShape)
        for peer in PEER_NAMES:
            group = [VARIANTS_BY_NAME[name] for name in names if VARIANTS_BY_NAME[name].peer == peer]
            if not group:
                continue
            if serving:
                jobs = [dict(serving_fields(shape), peer=peer, precision=variant.precision, threads=threads,
                             min_time=job.get("min_time", 0.0), check_dir=job.get("check_dir"),
                             out=f"out-{variant.name}.bin") for variant in group]
                answers.update(zip((variant.name for variant in group), self._python_jobs(peer, jobs)))
                continue
            if peer == "ggml":
                for variant in group:
                    out = f"out-{variant.name}.bin" if job.get("check_dir") else None
                    answers[variant.name] = self._ggml_job(variant, shape, threads, out=out, **job)
                continue
            jobs = [dict(shape_fields(shape), peer=peer, precision=variant.precision, threads=threads,
                         min_time=job.get("min_time", 0.0), cold_bytes=job.get("cold_bytes", 0.0),
                         check_dir=job.get("check_dir"), out=f"out-{variant.name}.bin") for variant in group]
            answers.update(zip((variant.name for variant in group), self._python_jobs(peer, jobs)))
        return answers

    def check(self, shapes, threads):
        """Checks every runnable variant on each shape family's small case against the reference;
        a variant that fails or disagrees on any is out of the run, with the reason kept."""
        self.check_cases([check_case(shape) for shape in shapes], threads)

    def check_cases(self, cases, threads):
        """check() on the given small cases themselves."""
        if not self.runnable():
            return
        if not self.reference:
            for name in self.runnable():
                self.variants[name].update(status="unchecked", detail="no simdattn_peer_reference to check against "
                                           "(build the simdattn_peer_reference target)")
            return
        for case in cases:
            if not self.runnable():
                return
            with tempfile.TemporaryDirectory(prefix="simdattn-peer-check-") as folder:
                reference = self._reference_output(folder, case, random.Random(f"{case.name}"))
                self.say(f"peers: checking {', '.join(self.runnable())} on {case.describe()}")
                for name, answer in self._run(self.runnable(), case, threads, check_dir=folder).items():
                    self._judge(name, case, answer, reference, output_of(folder, name))

    def check_serving(self, shape, threads):
        """Checks every runnable serving variant on the small case of `shape`'s family
        (serving_check_case): simdattn's reference computes each sequence on its own, the peer is
        called sequence by sequence as when timed; a variant that fails or disagrees is out."""
        names = self.runnable(serving=True)
        if not names:
            return
        if not self.reference:
            for name in names:
                self.variants[name].update(status="unchecked", detail="no simdattn_peer_reference to check against "
                                           "(build the simdattn_peer_reference target)")
            return
        case = serving_check_case(shape)
        with tempfile.TemporaryDirectory(prefix="simdattn-peer-check-") as folder:
            generator = random.Random(f"{case.name}")
            folders = [os.path.join(folder, f"seq{index}") for index in range(len(case.sequences))]
            reference = []
            for index, sequence_folder in enumerate(folders):
                os.mkdir(sequence_folder)
                reference += self._reference_output(sequence_folder, case.per_sequence(index), generator)
            self.say(f"peers: checking {', '.join(names)} on {case.describe()}")
            for name, answer in self._run(names, case, threads, check_dir=folder).items():
                parts = [output_of(sequence_folder, name) for sequence_folder in folders]
                self._judge(name, case, answer, reference, () if None in parts else sum(parts, ()))

    def _reference_output(self, folder, case, generator):
        """Writes seeded q, k and v of `case` (a Shape) into folder/{q,k,v}.bin (fp32 BHSD), runs
        simdattn_peer_reference on them, and returns its output."""
        q_count = case.batch * case.q_heads * case.seq_q * case.head_dim
        kv_count = case.batch * case.kv_heads * case.seq_k * case.head_dim
        for name, count in (("q", q_count), ("k", kv_count), ("v", kv_count)):
            write_floats(os.path.join(folder, f"{name}.bin"), count, generator)
        done = subprocess.run([self.reference, folder] + [str(value) for value in (
            case.batch, case.q_heads, case.kv_heads, case.seq_q, case.seq_k, case.head_dim)] +
            ["1" if case.causal else "0"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"simdattn_peer_reference failed on {case.describe()}: {done.stderr.strip()}")
        return read_floats(os.path.join(folder, "ref.bin"))

    def _judge(self, name, case, answer, reference, output):
        """Keeps the variant `name` in the run when its `output` on `case` agrees with `reference`."""
        entry = self.variants[name]
        precision = VARIANTS_BY_NAME[name].precision
        if not answer.get("ok"):
            entry.update(status="failed", detail=f"on the check case ({case.describe()}): {answer.get('error')}")
            return
        entry["computed"], entry["version"] = answer.get("computed", ""), answer.get("version", entry.get("version"))
        output = output or ()
        if len(output) != len(reference):
            entry.update(status="failed", detail=f"on the check case: wrote {len(output)} values, expected {len(reference)}")
            return
        error = max((abs(a - b) if math.isfinite(a) else math.inf) for a, b in zip(output, reference))
        tolerance = check_tolerance(precision)
        entry["checks"].append({"case": case.describe(), "max_abs_error": error, "tolerance": tolerance})
        if error > tolerance:
            entry.update(status="disagrees", detail=f"max |peer − reference| {error:.3g} > tolerance {tolerance:.3g} "
                                                    f"on {case.describe()}")

    def time_shape(self, shape, threads, min_time, cold_bytes, round_index):
        """Times every runnable variant on one standard shape, or with a ServingShape every runnable
        serving variant; a failure on one shape leaves the variant in the run for the others."""
        serving = isinstance(shape, ServingShape)
        names = self.runnable(serving=serving)
        if not names:
            return
        self.say(f"peers: timing {', '.join(names)} on {shape.name} (round {round_index + 1})")
        # A serving shape's K and V (one copy, hundreds of MB for decoding) are read from memory.
        cold = cold_bytes if shape.is_decode() and not serving else 0.0
        for name, answer in self._run(names, shape, threads, min_time=min_time, cold_bytes=cold).items():
            entry = self.variants[name]
            if not answer.get("ok"):
                # An error row on this shape (say, out of memory on 'long'); the variant stays in
                # the run for the other shapes, and the report lists the failure.
                entry.setdefault("failures", []).append(f"{shape.name}: {answer.get('error')}")
                self.results.append({"implementation": name, "shape": shape.name, "threads": threads,
                                     "error": answer.get("error") or "failed", "round": round_index,
                                     "serving": serving})
                continue
            entry["status"] = "measured"
            entry["computed"] = answer.get("computed", entry.get("computed", ""))
            entry["version"] = answer.get("version", entry.get("version"))
            self.results.append({"implementation": name, "shape": shape.name, "threads": threads,
                                 "seconds": answer["seconds"], "calls": answer.get("calls"), "round": round_index,
                                 "serving": serving})

    def stored(self):
        """What the run keeps: a copy, so that saving mid-run changes nothing for later shapes."""
        variants = {name: dict(entry) for name, entry in self.variants.items()}
        for name, entry in variants.items():
            if entry["status"] == "pending" and entry.get("failures"):
                entry.update(status="failed", detail="; ".join(entry["failures"]))
            elif entry["status"] == "pending" and entry["checks"]:
                entry.update(status="not timed", detail="checked, but no shape of this run timed it")
            elif entry["status"] == "pending":
                kind = "serving" if VARIANTS_BY_NAME[name].serving else "standard"
                entry.update(status="not run", detail=f"this run has no {kind} shape for it")
        return {"python": self.python, "ggml": self.ggml, "modules": self.modules,
                "variants": variants, "results": list(self.results)}
