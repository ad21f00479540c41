"""CNNExtractor's ONNX route: check an exported graph, score it with onnxruntime.

``CNNExtractor(inference="onnx")`` exports its fitted network once, in
``fit`` (:func:`~._cnn_nets.onnx_graph`, the torch side), as one graph from
the uint8 NHWC batch the decoder gives to the pooled features: the
normalisation, the forward pass up to ``layer_`` and the pooling all inside.
This module is the scoring side and needs no torch: onnxruntime runs the
graph on the CPU, so a model fitted on a machine with torch scores on one
that has onnxruntime alone.

The graph travels in the model file, so it is hostile until checked
(:func:`check_graph`, with the ``onnx`` package): one input and one output of
the expected types and shapes, standard operators from a list of those a
CNN exports to, no subgraphs, no functions, no weights in external files,
and every tensor's size known from the image size (shape inference), so the
memory of a batch is bounded before it runs.

Sessions are cached per graph (its SHA-256) and thread count, so scoring in
chunks (``mmfeat score``) builds one session, not one per chunk.
"""

import hashlib
import threading
import weakref
from collections import OrderedDict

import numpy as np

from mmfeat.features.image._cnn_deps import import_onnx, import_onnxruntime

__all__ = [
    "INPUT_NAME",
    "MAX_GRAPH_BYTES",
    "OUTPUT_NAME",
    "check_array",
    "check_graph",
    "run_graph",
    "session_for",
]

INPUT_NAME = "images"
OUTPUT_NAME = "features"
#: the largest graph a model file may hold
MAX_GRAPH_BYTES = 1 << 30
#: elements of any one tensor of one image; a batch runs in chunks that keep
#: every tensor under _MAX_CHUNK_ELEMENTS
_MAX_IMAGE_ELEMENTS = 1 << 28
_MAX_CHUNK_ELEMENTS = 1 << 28
_MAX_NODES = 100_000

# what torch's exporter writes for CNNs (convolutions, normalisation,
# activations, pooling, dense layers, the reshaping between them); nothing
# that allocates by a value (Expand, Tile, ConstantOfShape, Range, Resize,
# Pad), loops or branches
ALLOWED_OPS = frozenset(
    """Abs Add AveragePool BatchNormalization Cast Celu Clip Concat Constant Conv
    Div Dropout Elu Equal Erf Exp Flatten Gather Gelu Gemm GlobalAveragePool
    GlobalMaxPool HardSigmoid HardSwish Identity InstanceNormalization
    LayerNormalization LeakyRelu Log LogSoftmax LpNormalization MatMul Max
    MaxPool Mean Min Mish Mul Neg Pow PRelu Reciprocal ReduceL2 ReduceMax
    ReduceMean ReduceMin ReduceSum Relu Reshape Selu Shape Sigmoid Slice Softmax
    Softplus Softsign Split Sqrt Squeeze Sub Sum Tanh Transpose Unsqueeze
    Where""".split()
)

# sha256 of a read-only graph array by the array's identity (CNNExtractor
# keeps onnx_model_ read-only); a weak reference tells a reused id from the
# same array without keeping a dropped model's graph alive
_digests = {}
# check_graph's result per (digest, image size, features): a graph is parsed
# and shape-inferred once, not again by each session or load
_checked = OrderedDict()
_sessions = OrderedDict()
_MAX_SESSIONS = 4
_MAX_CHECKED = 16
_lock = threading.Lock()


class GraphError(ValueError):
    """An ONNX graph that mmfeat will not run; the message says why."""


def _dims(value_info):
    """Shape of a value: ints, None for the batch (a named dimension)."""
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        raise GraphError(f"tensor {value_info.name!r} has no known shape")
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(None)
        else:
            raise GraphError(
                f"tensor {value_info.name!r} has a dimension of unknown size"
            )
    return dims


def check_graph(graph, *, image_size, n_features):
    """Check serialised ONNX bytes; return the largest tensor of one image.

    Parameters
    ----------
    graph : bytes
        A serialised ``ModelProto``.
    image_size : tuple of int
        (height, width) of the uint8 input images.
    n_features : int
        Width of the output.

    Returns
    -------
    elements : int
        Elements of the largest tensor per image (weights too), which sizes
        the chunks a batch runs in.

    Raises
    ------
    GraphError
        If the graph is not one mmfeat exported and can run within bounds.
    """
    onnx = import_onnx("checking the ONNX graph of a CNNExtractor")
    if len(graph) > MAX_GRAPH_BYTES:
        raise GraphError(f"the graph is {len(graph)} bytes, over {MAX_GRAPH_BYTES}")
    try:
        model = onnx.load_model_from_string(graph)
    except Exception as exc:  # a DecodeError, or another protobuf failure
        raise GraphError(f"the bytes are not an ONNX model ({exc})") from None
    g = model.graph
    if model.functions or len(g.node) > _MAX_NODES:
        raise GraphError(
            f"the graph has {len(model.functions)} functions and {len(g.node)} "
            f"nodes; mmfeat exports none and at most {_MAX_NODES}"
        )
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise GraphError(f"the graph imports operator domain {opset.domain!r}")
    for node in g.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ALLOWED_OPS:
            raise GraphError(
                f"node {node.name!r} is a {node.domain or 'ai.onnx'} "
                f"{node.op_type!r}, not an operator mmfeat exports"
            )
        for attr in node.attribute:
            if attr.type in (attr.GRAPH, attr.GRAPHS) or attr.g.node or attr.graphs:
                raise GraphError(f"node {node.name!r} holds a subgraph")
    tensors = list(g.initializer) + [
        a.t for node in g.node for a in node.attribute if a.type == a.TENSOR
    ]
    for t in tensors:
        if t.data_location == t.EXTERNAL or t.external_data:
            raise GraphError(f"tensor {t.name!r} keeps its data in an external file")
    if g.sparse_initializer:
        raise GraphError("the graph holds sparse initializers")
    weights = {t.name for t in g.initializer}
    inputs = [v for v in g.input if v.name not in weights]
    h, w = image_size
    if (
        [v.name for v in inputs] != [INPUT_NAME]
        or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.UINT8
        or _dims(inputs[0]) != [None, h, w, 3]
    ):
        raise GraphError(
            f"the graph's input is not {INPUT_NAME!r}, uint8 of shape (n, {h}, {w}, 3)"
        )
    if (
        [v.name for v in g.output] != [OUTPUT_NAME]
        or g.output[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT
        or _dims(g.output[0]) != [None, n_features]
    ):
        raise GraphError(
            f"the graph's output is not {OUTPUT_NAME!r}, float of shape "
            f"(n, {n_features})"
        )
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise GraphError(
            f"shape inference fails ({str(exc).splitlines()[0]})"
        ) from None
    largest = max((int(np.prod(t.dims, dtype=np.int64)) for t in tensors), default=1)
    produced = {o for node in g.node for o in node.output}
    known = {v.name for v in inferred.graph.value_info} | {OUTPUT_NAME}
    if not produced <= known:
        missing = sorted(produced - known)[:3]
        raise GraphError(f"the sizes of tensors {missing} are not known")
    for v in [*inferred.graph.value_info, *g.output]:
        dims = _dims(v)
        if any(d is not None and d < 0 for d in dims):
            raise GraphError(f"tensor {v.name!r} has a negative dimension")
        size = int(np.prod([d for d in dims if d is not None], dtype=np.float64))
        if size > _MAX_IMAGE_ELEMENTS:
            raise GraphError(
                f"tensor {v.name!r} holds {size} elements per image, over "
                f"{_MAX_IMAGE_ELEMENTS}"
            )
        largest = max(largest, size)
    return largest


def _digest(graph_array):
    if graph_array.flags.writeable:  # could change under the memo: hash it
        return hashlib.sha256(memoryview(graph_array)).hexdigest()
    key = id(graph_array)
    with _lock:
        held = _digests.get(key)
        if held is not None and held[0]() is graph_array:
            return held[1]
    digest = hashlib.sha256(memoryview(graph_array)).hexdigest()
    with _lock:
        if len(_digests) >= 64:
            _digests.clear()
        _digests[key] = (weakref.ref(graph_array), digest)
    return digest


def check_array(graph_array, *, image_size, n_features):
    """:func:`check_graph` of a uint8 graph array, once per graph and shapes."""
    key = (_digest(graph_array), tuple(image_size), int(n_features))
    with _lock:
        if key in _checked:
            _checked.move_to_end(key)
            return _checked[key]
    largest = check_graph(
        graph_array.tobytes(), image_size=image_size, n_features=n_features
    )
    with _lock:
        _checked[key] = largest
        while len(_checked) > _MAX_CHECKED:
            _checked.popitem(last=False)
    return largest


def session_for(graph_array, *, image_size, n_features, threads):
    """An onnxruntime session of ``graph_array`` (uint8) and its chunk size.

    Checked with :func:`check_array` and built once per graph and thread
    count; ``threads`` intra-op threads, one inter-op thread, CPU only.

    Returns
    -------
    session : onnxruntime.InferenceSession
    rows : int
        Images per run, so that no tensor exceeds the chunk bound.
    """
    ort = import_onnxruntime()
    key = (_digest(graph_array), tuple(image_size), int(n_features), int(threads))
    with _lock:
        if key in _sessions:
            _sessions.move_to_end(key)
            return _sessions[key]
    largest = check_array(graph_array, image_size=image_size, n_features=n_features)
    graph = graph_array.tobytes()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(
        graph, sess_options=options, providers=["CPUExecutionProvider"]
    )
    entry = (session, max(1, _MAX_CHUNK_ELEMENTS // max(1, largest)))
    with _lock:
        _sessions[key] = entry
        while len(_sessions) > _MAX_SESSIONS:
            _sessions.popitem(last=False)
    return entry


def run_graph(session, rows, batch):
    """Features (float32, one row per image) of a uint8 (n, H, W, 3) batch."""
    batch = np.ascontiguousarray(batch, dtype=np.uint8)
    parts = [
        session.run([OUTPUT_NAME], {INPUT_NAME: batch[i : i + rows]})[0]
        for i in range(0, len(batch), rows)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
