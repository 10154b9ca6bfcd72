"""Users' ONNX files: the only code that parses ONNX and builds ONNX Runtime sessions. Default
operator domains only, external data only from the model's own directory, size and depth bounded.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any, BinaryIO

from aidlc.errors import InvalidInput, UsageError

if TYPE_CHECKING:
    from onnx import GraphProto, ModelProto, TensorProto, ValueInfoProto

MAX_ONNX_BYTES: int = 1 << 30
MAX_NODES: int = 1_000_000
ALLOWED_DOMAINS: frozenset[str] = frozenset({"", "ai.onnx", "ai.onnx.ml"})

# Subgraphs (If, Loop, Scan bodies) nest; the walk is iterative, but every level costs work and a
# real model nests a handful deep. protobuf's own limit (100 messages) allows about 33 levels.
_MAX_DEPTH = 32
_DOMAIN_HINT = "export with standard ONNX operators only: no custom, contrib or vendor operators"
_EXTERNAL_HINT = "keep the model's external data files next to it, in the same directory"
_EXPORT_HINT = "export the model again with an ONNX exporter (PyTorch, tf2onnx, skl2onnx)"
# offset and length of external data are decimal strings; Python's int() would also take
# "+5", " 5" and "1_000", which onnx and ONNX Runtime read differently or not at all
_DECIMAL = re.compile(r"[0-9]{1,19}")
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
# LinearClassifier and SVMClassifier name their integer labels classlabels_ints;
# TreeEnsembleClassifier and ZipMap name them classlabels_int64s
_INT_LABELS = frozenset({"classlabels_ints", "classlabels_int64s"})
# TensorProto.DEFAULT, TensorProto.EXTERNAL and TensorProto.FLOAT, known here without importing
# onnx, which only the functions that parse do
_DEFAULT, _EXTERNAL, _FLOAT = 0, 1, 1


@dataclass(frozen=True)
class OnnxTensor:
    """One graph input or output as ONNX declares it.

    >>> OnnxTensor("input", "tensor", "float", (None, 8)).to_json()
    {'name': 'input', 'kind': 'tensor', 'elem': 'float', 'shape': [None, 8]}
    """

    name: str
    kind: str  # "tensor", or "sequence_map" for seq(map(K, float)) as ZipMap makes
    elem: str  # lower-case TensorProto type name; the key type of a sequence_map
    shape: tuple[int | None, ...]  # None for a dynamic or symbolic dim; () for a sequence_map

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "elem": self.elem,
            "shape": list(self.shape),
        }


@dataclass(frozen=True)
class OnnxFacts:
    """What aidlc reads from a checked model: producer, opsets, signature, class labels, size."""

    producer_name: str
    producer_version: str
    ir_version: int
    opsets: dict[str, int]  # domain ("" for the default) -> version
    inputs: list[OnnxTensor]  # graph inputs that are not initializers
    outputs: list[OnnxTensor]
    class_labels: list[str] | list[int] | None  # of the first ai.onnx.ml classifier node
    nodes: int  # across the graph and its subgraphs
    size: int  # bytes of the serialized, self-contained model

    def to_json(self) -> dict[str, Any]:
        return {
            "producer_name": self.producer_name,
            "producer_version": self.producer_version,
            "ir_version": self.ir_version,
            "opsets": dict(self.opsets),
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
            "class_labels": None if self.class_labels is None else list(self.class_labels),
            "nodes": self.nodes,
            "size": self.size,
        }


def load_onnx_file(path: Path, *, max_bytes: int = MAX_ONNX_BYTES) -> bytes:
    """A user's .onnx file as one self-contained serialized model: external data inlined, but only
    from regular files inside path's own directory; then checked as `inspect_onnx` does.

    A file without external data comes back byte for byte as it is on disk.

    >>> load_onnx_file(Path("/nonexistent/model.onnx"))
    Traceback (most recent call last):
    ...
    aidlc.errors.InvalidInput: /nonexistent/model.onnx cannot be read: No such file or directory
    """
    shown = _shown(str(path))
    data = _read_model_file(path, shown, max_bytes)
    model = _parse(data, f"{shown} is")
    graphs = _walk(model)
    external = [tensor for tensor in _tensors(graphs) if _is_external(tensor)]
    if external:
        _inline(external, path.parent, model_size=len(data), max_bytes=max_bytes)
        data = model.SerializeToString()
        if len(data) > max_bytes:
            raise _too_large(shown, len(data), max_bytes)
    _checked(model, data)
    return data


def inspect_onnx(data: bytes, *, max_bytes: int = MAX_ONNX_BYTES) -> OnnxFacts:
    """Parse and check a self-contained model (refuses any remaining external data reference).

    >>> inspect_onnx(b"")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    aidlc.errors.InvalidInput: the model bytes are not an ONNX model: there is no graph (...)
    """
    if len(data) > max_bytes:
        raise _too_large("the model", len(data), max_bytes)
    return _checked(_parse(data, "the model bytes are"), data)


def onnx_session(data: bytes, *, threads: int = 1) -> Any:
    """An onnxruntime.InferenceSession on the CPU provider only for checked bytes.

    The structural rules are checked again here (domains, external data, functions), so bytes
    that never went through `inspect_onnx` still cannot reach ONNX Runtime with what it refuses.

    >>> import numpy as np
    >>> from onnx import TensorProto, helper
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    >>> graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    >>> model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    >>> onnx_session(model.SerializeToString()).run(None, {"x": np.array([[-1.0, 2.0]], "f4")})
    [array([[0., 2.]], dtype=float32)]
    """
    import onnxruntime

    if threads < 1:
        raise UsageError(f"threads must be at least 1, not {threads}")
    model = _parse(data, "the model bytes are")
    _refuse_external(_tensors(_walk(model)))
    # ONNX Runtime gets bytes serialized from the message just checked, not the caller's: two
    # protobuf parsers then cannot read one input two ways, and fields onnx does not know (which
    # nothing checked) are gone.
    model.DiscardUnknownFields()
    # ONNX Runtime reads session options from this entry when ORT_LOAD_CONFIG_FROM_MODEL is set
    # in the environment: the options are aidlc's to choose, never the file's
    kept = [p for p in model.metadata_props if p.key != "ort_config"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    canonical = model.SerializeToString()
    del model  # a large graph's parsed message is as big as the file: free it before the session
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle worker threads sleep instead of spinning: a served model must not hold idle cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(
            canonical, sess_options=options, providers=["CPUExecutionProvider"]
        )
    # ONNX Runtime's errors (Fail, InvalidGraph, InvalidArgument, NotImplemented, ...) derive
    # from Exception directly, with no common base of their own
    except Exception as exc:
        raise InvalidInput(
            f"ONNX Runtime cannot load the model: {_first_line(exc)}", hint=_EXPORT_HINT
        ) from exc


def _read_model_file(path: Path, shown: str, max_bytes: int) -> bytes:
    try:
        info = path.stat()
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{shown} cannot be read: {_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{shown} is not a regular file")
    # refused on the size the file system reports, before a byte is read
    if info.st_size > max_bytes:
        raise _too_large(shown, info.st_size, max_bytes)
    with _open_regular(path, info, shown, follow=True) as file:
        # one byte past the size stat gave: a file that grew since is noticed, and no buffer of
        # max_bytes is allocated for a small file
        data = file.read(info.st_size + 1)
    if len(data) != info.st_size:
        raise InvalidInput(f"{shown} changed while it was being read")
    return data


def _open_regular(path: Path, info: os.stat_result, shown: str, *, follow: bool) -> BinaryIO:
    """Open the very file `info` describes: a swap after the checks is refused, not read."""
    # O_NONBLOCK: a FIFO swapped in after the stat must not block the open
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{shown} cannot be read: {_reason(exc)}") from None
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino) or not stat.S_ISREG(
        opened.st_mode
    ):
        os.close(fd)
        raise InvalidInput(f"{shown} changed while it was being read")
    return os.fdopen(fd, "rb")


def _parse(data: bytes, subject: str) -> ModelProto:
    """`subject` is what the message names, with its verb: "model.onnx is"."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    # protobuf's DecodeError (also raised past its nesting limit) derives from Exception only
    except Exception:
        raise InvalidInput(f"{subject} not an ONNX model", hint=_EXPORT_HINT) from None
    # any bytes that happen to be valid protobuf parse, as unknown fields of an empty message
    if not model.HasField("graph"):
        raise InvalidInput(f"{subject} not an ONNX model: there is no graph", hint=_EXPORT_HINT)
    return model


def _walk(model: ModelProto) -> list[GraphProto]:
    """Every graph of the model, main graph first, once the structural rules hold."""
    if len(model.functions):
        raise InvalidInput(
            "model-local functions are not supported; export with functions inlined",
            hint=_EXPORT_HINT,
        )
    # training graphs carry their own initializers and nodes that inference never runs
    if len(model.training_info):
        raise InvalidInput("models with training information are not supported", hint=_EXPORT_HINT)
    graphs, nodes, todo = [], 0, [(model.graph, 0)]
    while todo:
        graph, depth = todo.pop()
        if depth > _MAX_DEPTH:
            raise InvalidInput(f"the model nests subgraphs more than {_MAX_DEPTH} levels deep")
        graphs.append(graph)
        nodes += len(graph.node)
        if nodes > MAX_NODES:
            raise InvalidInput(f"the model has more than {MAX_NODES:,} nodes")
        for node in graph.node:
            if _text(node.domain) not in ALLOWED_DOMAINS:
                raise InvalidInput(
                    f"the model uses operator domain '{_shown(node.domain)}' (node "
                    f"'{_shown(node.name)}' op '{_shown(node.op_type)}'); aidlc runs only the "
                    "default ONNX domains",
                    hint=_DOMAIN_HINT,
                )
            # every field, whatever the attribute's declared type says it holds
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    todo.append((attribute.g, depth + 1))
                todo.extend((sub, depth + 1) for sub in attribute.graphs)
    for opset in model.opset_import:
        if _text(opset.domain) not in ALLOWED_DOMAINS:
            raise InvalidInput(
                f"the model imports operator domain '{_shown(opset.domain)}'; aidlc runs only the "
                "default ONNX domains",
                hint=_DOMAIN_HINT,
            )
    return graphs


def _tensors(graphs: list[GraphProto]) -> Iterator[TensorProto]:
    """Every tensor that can hold data: initializers, sparse ones, and node attributes."""
    for graph in graphs:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                sparses = list(attribute.sparse_tensors)
                if attribute.HasField("sparse_tensor"):
                    sparses.append(attribute.sparse_tensor)
                for sparse in sparses:
                    yield sparse.values
                    yield sparse.indices


def _is_external(tensor: TensorProto) -> bool:
    # external_data entries count even without the EXTERNAL flag: nothing must be read from them
    return tensor.data_location != _DEFAULT or len(tensor.external_data) > 0


def _refuse_external(tensors: Iterator[TensorProto]) -> None:
    # ONNX Runtime would resolve a location against its working directory or, for its
    # "*/_ORT_MEM_ADDR_/*" tag, read process memory at the offset: nothing external may reach it
    for tensor in tensors:
        if _is_external(tensor):
            location = _entries(tensor).get("location", "")
            raise InvalidInput(
                f"tensor '{_shown(tensor.name)}' refers to external data '{_shown(location)}'",
                hint="load the model from its file so that its external data is inlined",
            )


@dataclass(frozen=True)
class _Extent:
    """A checked byte range of a file inside the model's directory."""

    tensor: TensorProto
    shown: str
    file: Path
    info: os.stat_result
    offset: int
    length: int


def _inline(
    tensors: list[TensorProto], directory: Path, *, model_size: int, max_bytes: int
) -> None:
    """Read each tensor's external bytes into raw_data, every location checked before any read."""
    root = directory.resolve()
    extents = [_extent(tensor, directory, root) for tensor in tensors]
    total = model_size + sum(extent.length for extent in extents)
    if total > max_bytes:
        raise _too_large("the model with its external data", total, max_bytes)
    for extent in extents:
        subject = f"external data '{extent.shown}'"
        with _open_regular(extent.file, extent.info, subject, follow=False) as file:
            file.seek(extent.offset)
            data = file.read(extent.length)
        if len(data) != extent.length:
            raise InvalidInput(f"external data '{extent.shown}' changed while it was being read")
        extent.tensor.raw_data = data
        del extent.tensor.external_data[:]
        extent.tensor.ClearField("data_location")  # back to DEFAULT: the bytes are inline


def _extent(tensor: TensorProto, directory: Path, root: Path) -> _Extent:
    entries = _entries(tensor)
    location = entries.get("location", "")
    shown = _shown(location)
    if tensor.data_location != _EXTERNAL or not location:
        raise InvalidInput(
            f"tensor '{_shown(tensor.name)}' has a malformed external data reference",
            hint=_EXPORT_HINT,
        )
    outside = InvalidInput(
        f"external data '{shown}' is outside the model's directory", hint=_EXTERNAL_HINT
    )
    # decided on the text alone, so nothing outside is ever touched, not even by a stat
    windows = PureWindowsPath(location)  # splits on "/" and "\\", and knows drives
    if "\0" in location or windows.drive or windows.root or ".." in windows.parts:
        raise outside
    try:
        file = (directory / location).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop is a RuntimeError before 3.13
        raise outside from None
    # resolve() followed every symlink, so a link inside pointing out lands outside here
    if not file.is_relative_to(root):
        raise outside
    try:
        info = file.stat()
    except OSError:
        raise InvalidInput(f"external data '{shown}' is missing", hint=_EXTERNAL_HINT) from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"external data '{shown}' is not a regular file", hint=_EXTERNAL_HINT)
    offset_text, length_text = entries.get("offset", "0"), entries.get("length")
    out_of_range = InvalidInput(
        f"external data '{shown}' is out of range: offset {_shown(offset_text, 24)}, length "
        f"{_shown(length_text or 'to the end', 24)} in a file of {info.st_size} bytes",
        hint=_EXTERNAL_HINT,
    )
    if not _DECIMAL.fullmatch(offset_text) or (
        length_text is not None and not _DECIMAL.fullmatch(length_text)
    ):
        raise out_of_range
    offset = int(offset_text)
    length = info.st_size - offset if length_text is None else int(length_text)
    if offset > info.st_size or length < 0 or offset + length > info.st_size:
        raise out_of_range
    return _Extent(tensor, shown, file, info, offset, length)


def _entries(tensor: TensorProto) -> dict[str, str]:
    # a repeated key takes its last value, as onnx reads it; keys or values that are not UTF-8
    # come out with replacement characters, which no file name check accepts
    return {_text(entry.key): _text(entry.value) for entry in tensor.external_data}


def _checked(model: ModelProto, data: bytes) -> OnnxFacts:
    import onnx

    graphs = _walk(model)
    _refuse_external(_tensors(graphs))
    # the bytes, not the message: the checker would serialize the message once more
    try:
        onnx.checker.check_model(data)
    # onnx's ValidationError and the ValueError/TypeError of its C++ bindings share only Exception
    except Exception as exc:
        raise InvalidInput(
            f"the model fails the ONNX checker: {_first_line(exc)}", hint=_EXPORT_HINT
        ) from exc
    return _describe(model, graphs, len(data))


def _describe(model: ModelProto, graphs: list[GraphProto], size: int) -> OnnxFacts:
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    initializers |= {sparse.values.name for sparse in graph.sparse_initializer}
    return OnnxFacts(
        producer_name=_shown(model.producer_name, 200),
        producer_version=_shown(model.producer_version, 200),
        ir_version=model.ir_version,
        opsets={
            ("" if opset.domain == "ai.onnx" else _text(opset.domain)): opset.version
            for opset in model.opset_import
        },
        inputs=[_tensor(v, "input") for v in graph.input if v.name not in initializers],
        outputs=[_tensor(v, "output") for v in graph.output],
        class_labels=_class_labels(graph),
        nodes=sum(len(g.node) for g in graphs),
        size=size,
    )


def _tensor(value: ValueInfoProto, role: str) -> OnnxTensor:
    # protobuf hands out a string field that is not UTF-8 (onnx.proto is proto2) as bytes
    if isinstance(value.name, bytes):
        raise InvalidInput(f"an {role} name is not UTF-8 text: '{_shown(value.name)}'")
    name, shown = value.name, _shown(value.name)
    kind = value.type.WhichOneof("value")
    if kind == "tensor_type":
        tensor = value.type.tensor_type
        # the checker refused a graph input or output without a shape, which () would misstate
        shape = tuple(
            dim.dim_value if dim.HasField("dim_value") and dim.dim_value >= 0 else None
            for dim in tensor.shape.dim
        )
        return OnnxTensor(name, "tensor", _elem(tensor.elem_type, f"{role} '{shown}'"), shape)
    if role == "output" and kind == "sequence_type":
        inner = value.type.sequence_type.elem_type
        if inner.WhichOneof("value") == "map_type":
            values = inner.map_type.value_type
            if (
                values.WhichOneof("value") == "tensor_type"
                and values.tensor_type.elem_type == _FLOAT
            ):
                key = _elem(inner.map_type.key_type, f"output '{shown}'")
                return OnnxTensor(name, "sequence_map", key, ())
        raise InvalidInput(
            f"output '{shown}' is a sequence but not of maps to float", hint=_EXPORT_HINT
        )
    raise InvalidInput(f"{role} '{shown}' is not a tensor", hint=_EXPORT_HINT)


def _elem(code: int, subject: str) -> str:
    import onnx

    try:
        name: str = onnx.TensorProto.DataType.Name(code)
    except ValueError:
        name = "UNDEFINED"
    if name == "UNDEFINED":
        raise InvalidInput(f"{subject} has no known element type", hint=_EXPORT_HINT)
    return name.lower()


def _class_labels(graph: GraphProto) -> list[str] | list[int] | None:
    for node in graph.node:
        if node.domain != "ai.onnx.ml":
            continue
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and len(attribute.strings):
                return [label.decode("utf-8", "replace") for label in attribute.strings]
            if attribute.name in _INT_LABELS and len(attribute.ints):
                return list(attribute.ints)
    return None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _shown(value: str | bytes, limit: int = 100) -> str:
    """A name from the model as a message may show it: short, and no control characters."""
    return "".join(c if c.isprintable() else "?" for c in _text(value)[:limit])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return _shown(_ORT_PREFIX.sub("", lines[0] if lines else type(exc).__name__), 200)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path"


def _too_large(subject: str, size: int, limit: int) -> InvalidInput:
    return InvalidInput(
        f"{subject} is {_size(size)}, over the limit of {_size(limit)}",
        hint="a smaller model, or a larger limit",
    )


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"
