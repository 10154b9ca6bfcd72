"""Audit of skops files that users bring: the archive, its schema and every type and function it
names, checked against what aidlc derives from scikit-learn, NumPy and SciPy before skops builds
anything; the fitted arrays that native code trusts are skopsstate's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aidlc.errors import InvalidInput
from aidlc.registry.skopsstate import check_fitted_state, type_name, type_of

MAX_SKOPS_BYTES = 2 * 1024**3  # the archive file itself
MAX_EXPANDED_BYTES = 4 * 1024**3  # sum of declared uncompressed entry sizes
MAX_RATIO = 200  # expanded / compressed for deflated entries
MAX_ENTRIES = 200_000
MAX_SCHEMA_BYTES = 64 * 1024**2  # parsed, a schema takes ten to twenty times its size
MAX_DEPTH = 2_000  # nesting of schema nodes

# HistGradientBoosting with categorical features keeps a FunctionTransformer whose func is
# functools.partial(check_array, ...): it validates and converts its input, nothing more.
_CHECK_ARRAY = "sklearn.utils.validation.check_array"
# The score functions of sklearn.feature_selection, the default score_func of SelectKBest and its
# siblings; trusted only as that parameter. Listed by name because __all__ also holds f_oneway,
# which is no default of any estimator.
_SCORE_FUNCTIONS = (
    "chi2",
    "f_classif",
    "f_regression",
    "r_regression",
    "mutual_info_classif",
    "mutual_info_regression",
)

# Private classes that fitted public estimators keep in their state (ObjectNode), found by
# fitting every public estimator and saving it with skops; tests/registry/test_skopsaudit.py
# repeats that sweep, so a scikit-learn release that needs another one fails there.
_SKLEARN_PRIVATE = (
    # HistGradientBoosting*: one predictor per tree and the binning of the features
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    # CalibratedClassifierCV: a calibrated classifier per fold and its calibrator
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    # GaussianProcessClassifier: one binary Laplace classifier per class (pair)
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    # OneVsRestClassifier / OneVsOneClassifier: the stand-in for a label that never varies
    "sklearn.multiclass._ConstantPredictor",
    # MLPClassifier / MLPRegressor: the optimizer's state, kept for warm_start and partial_fit
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # GridSearchCV / RandomizedSearchCV with scoring=None: the estimator's own score method
    "sklearn.metrics._scorer._PassthroughScorer",
)
# The trees of DecisionTree*, RandomForest*, ExtraTrees*, GradientBoosting*, IsolationForest
_TREE = "sklearn.tree._tree.Tree"
# Voting* and Stacking* keep named_estimators_ in a Bunch, a dict subclass
_BUNCH = "sklearn.utils._bunch.Bunch"

# Protocol 0 FunctionNodes import the function named in their content rather than the one in
# __module__/__class__, which is what this audit checks; later protocols are unknown to it.
_PROTOCOLS = (1, 2)
_NODE_KEYS = ("__loader__", "__module__", "__class__")
_STEP = 1 << 20  # bytes inflated at a time when checking a deflated entry
_PICKLE_HINT = "save the model with skops.io.dump; aidlc never loads pickle"
_TYPE_HINT = (
    "save the model with scikit-learn's own classes only; "
    "export it to ONNX (skl2onnx) if it needs custom code"
)
_ARCHIVE_HINT = "save the model with skops.io.dump (no compression or deflate)"
# What zipfile raises on a malformed archive or entry, zlib.error from a corrupt deflate stream
# among them.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    struct.error,
    ValueError,
    OSError,
    EOFError,
    NotImplementedError,
    IndexError,
    OverflowError,
)


@dataclass(frozen=True)
class SkopsAudit:
    """What a skops file holds, as far as its archive and schema tell without loading it."""

    root: str  # type name of the root object, e.g. "sklearn.pipeline.Pipeline"
    types: frozenset[str]  # every type and function name in the file
    entries: int
    expanded: int  # declared uncompressed bytes


# -- trusted types ------------------------------------------------------------------------------


def _defined_in(*modules: ModuleType) -> set[str]:
    return {
        type_name(obj)
        for module in modules
        for obj in vars(module).values()
        if isinstance(obj, type) and obj.__module__ == module.__name__
    }


@functools.cache
def _loader_types() -> dict[str, frozenset[str]]:
    """The type names each skops loader may build, derived from the installed libraries."""
    import collections

    import numpy as np
    import scipy.sparse
    import sklearn._loss._loss
    import sklearn._loss.link
    import sklearn._loss.loss
    import sklearn.gaussian_process.kernels
    import sklearn.linear_model._sgd_fast
    import sklearn.metrics._dist_metrics
    import sklearn.model_selection._split
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.utils import all_estimators

    estimators = {type_name(cls) for _, cls in all_estimators()}
    sklearn_objects = {n for n in estimators if n.startswith("sklearn.")}
    sklearn_objects |= set(_SKLEARN_PRIVATE)
    # GLMs and (Hist)GradientBoosting keep their loss and link objects
    sklearn_objects |= _defined_in(sklearn._loss.loss, sklearn._loss.link)
    # neighbors models keep a KD or ball tree and its distance metric, Gaussian processes their
    # kernel, *SearchCV its cross-validation splitter
    sklearn_objects |= {type_name(KDTree), type_name(BallTree)}
    sklearn_objects |= _defined_in(sklearn.metrics._dist_metrics)
    sklearn_objects |= _defined_in(sklearn.gaussian_process.kernels)
    sklearn_objects |= _defined_in(sklearn.model_selection._split)
    # the Cython half of those losses and SGD*'s loss, rebuilt by skops' LossNode
    cython_losses = _defined_in(sklearn._loss._loss, sklearn.linear_model._sgd_fast)

    builtin_types = (int, float, str, bool, list, dict, tuple, set, slice, bytes, bytearray)
    builtins = {type_name(t) for t in builtin_types}
    scalars = {type_name(t) for t in np.sctypeDict.values()}
    dtype_classes = {
        type_name(c)
        for c in vars(np.dtypes).values()
        if isinstance(c, type) and issubclass(c, np.dtype)
    }
    sparse_bases = (scipy.sparse.spmatrix, scipy.sparse.sparray)
    sparse = {
        type_name(c)
        for c in vars(scipy.sparse).values()
        if isinstance(c, type) and issubclass(c, sparse_bases) and c not in sparse_bases
    }
    loaders = {
        "ObjectNode": sklearn_objects,
        "TreeNode": {_TREE},
        "LossNode": cython_losses,
        "DictNode": {"builtins.dict", type_name(collections.OrderedDict), _BUNCH},
        "ListNode": {"builtins.list"},
        "SetNode": {"builtins.set"},
        "TupleNode": {"builtins.tuple"},
        "JsonNode": {f"builtins.{t}" for t in ("int", "float", "str", "bool")},
        "SliceNode": {"builtins.slice"},
        "BytesNode": {"builtins.bytes"},
        "BytearrayNode": {"builtins.bytearray"},
        # a value that is a type (a dtype= parameter) or the key types of a DictNode, which
        # skops calls with each key
        "TypeNode": builtins | scalars | dtype_classes,
        # a NumPy scalar is an NdArrayNode of its own type
        "NdArrayNode": {type_name(np.ndarray)} | scalars,
        "MaskedArrayNode": {type_name(np.ma.MaskedArray)},
        "DTypeNode": {type_name(np.dtype)},
        "RandomStateNode": {type_name(np.random.RandomState)},
        "RandomGeneratorNode": {type_name(np.random.Generator)},
        "SparseMatrixNode": sparse,
        "PartialNode": {"functools.partial"},
    }
    return {loader: frozenset(names) for loader, names in loaders.items()}


@functools.cache
def _bit_generators() -> frozenset[str]:
    # skops names the bit generator of a Generator numpy.random.<name>, read from the state
    import numpy as np

    return frozenset(
        f"numpy.random.{attr}"
        for attr, obj in vars(np.random).items()
        if isinstance(obj, type)
        and issubclass(obj, np.random.BitGenerator)
        and obj is not np.random.BitGenerator
    )


@functools.cache
def trusted_types() -> frozenset[str]:
    """Every type name aidlc lets skops construct, derived at run time from scikit-learn's public
    estimators, the private classes their fitted state holds, NumPy's and SciPy's public classes.

    >>> {"sklearn.pipeline.Pipeline", "numpy.ndarray"} <= trusted_types()
    True
    >>> "builtins.eval" in trusted_types()
    False
    """
    return frozenset().union(*_loader_types().values(), _bit_generators())


@functools.cache
def trusted_functions() -> frozenset[str]:
    """Every function a skops file may name: check_array, and the public score functions of
    sklearn.feature_selection (only as the score_func of a univariate selector), each named by
    its defining module as skops writes it.

    >>> "sklearn.feature_selection._univariate_selection.f_classif" in trusted_functions()
    True
    >>> "numpy.log1p" in trusted_functions()
    False
    """
    return frozenset({_CHECK_ARRAY}) | _score_functions()


@functools.cache
def _score_functions() -> frozenset[str]:
    import sklearn.feature_selection as selection

    public = set(selection.__all__)
    return frozenset(type_name(getattr(selection, n)) for n in _SCORE_FUNCTIONS if n in public)


@functools.cache
def _score_func_owners() -> frozenset[str]:
    # the univariate feature selectors: a score function is trusted only as their score_func
    import inspect

    from sklearn.utils import all_estimators

    return frozenset(
        type_name(c) for _, c in all_estimators() if "score_func" in inspect.signature(c).parameters
    )


# -- the archive --------------------------------------------------------------------------------


def _open_archive(data: bytes, name: str) -> zipfile.ZipFile:
    """The zip archive in `data`, refused unless every limit holds before anything reads it."""
    if len(data) > MAX_SKOPS_BYTES:
        raise InvalidInput(f"{name} is larger than {MAX_SKOPS_BYTES} bytes")
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise InvalidInput(
            f"{name} holds a pickle stream; aidlc never loads pickle", hint=_PICKLE_HINT
        )
    if not data.startswith(b"PK\x03\x04"):
        raise InvalidInput(f"{name} is not a skops file (a zip archive)", hint=_ARCHIVE_HINT)
    # zipfile builds an object for every central directory record, each of which starts with
    # this signature: counting them bounds that work before zipfile starts it.
    if data.count(b"PK\x01\x02") > MAX_ENTRIES:
        raise InvalidInput(f"{name} has more than {MAX_ENTRIES} entries")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS:
        raise InvalidInput(f"{name} is not a valid zip archive", hint=_ARCHIVE_HINT) from None
    _check_entries(archive, name)
    for info in archive.infolist():
        if info.compress_type == zipfile.ZIP_DEFLATED:
            _check_inflated_size(data, info, name)
    return archive


def _check_entries(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse an archive whose declared sizes, names or methods break a limit."""
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise InvalidInput(f"{name} has more than {MAX_ENTRIES} entries")
    names: set[str] = set()
    expanded = packed = unpacked = 0
    for info in infos:
        entry = info.filename
        if entry in names:
            raise InvalidInput(f"{name} holds the entry {entry[:100]!r} twice")
        names.add(entry)
        if "/" in entry or "\\" in entry or ".." in entry:
            raise InvalidInput(f"{name} holds an entry with a path: {entry[:100]!r}")
        if info.flag_bits & 0x1:
            raise InvalidInput(f"{name} holds an encrypted entry", hint=_ARCHIVE_HINT)
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise InvalidInput(f"{name} is not a valid zip archive", hint=_ARCHIVE_HINT)
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            # refuses a deflate bomb that declares its size before any of it is inflated
            if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise InvalidInput(
                    f"{name}: entry {entry[:100]!r} would expand more than {MAX_RATIO} times "
                    "(a zip bomb?)"
                )
            packed += info.compress_size
            unpacked += info.file_size
        else:
            raise InvalidInput(
                f"{name} uses zip compression method {info.compress_type}", hint=_ARCHIVE_HINT
            )
        expanded += info.file_size
    if expanded > MAX_EXPANDED_BYTES or unpacked > MAX_RATIO * max(packed, 1):
        raise InvalidInput(
            f"{name} would expand to more than {MAX_EXPANDED_BYTES} bytes or "
            f"{MAX_RATIO} times its size (a zip bomb?)"
        )


def _check_inflated_size(data: bytes, info: zipfile.ZipInfo, name: str) -> None:
    """Refuse a deflated entry that inflates to another size than its header declares.

    zipfile returns no more than the declared size, but its read() first inflates everything it
    reads in one call: under a header that understates the size, a megabyte read by skops would
    become a gigabyte in memory. Inflating here in bounded steps holds one step at a time.
    """
    corrupt = InvalidInput(
        f"{name}: entry {info.filename[:100]!r} does not inflate to its declared size "
        "(corrupt, or a zip bomb)"
    )
    try:
        header = struct.unpack_from("<4s5H3L2H", data, info.header_offset)
    except struct.error:
        raise corrupt from None
    if header[0] != b"PK\x03\x04":
        raise corrupt
    start = info.header_offset + 30 + header[-2] + header[-1]  # after the name and extra field
    packed = memoryview(data)[start : start + info.compress_size]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # a raw deflate stream, as zip stores it
    inflated = 0
    try:
        for offset in range(0, len(packed), _STEP):
            pending: bytes | memoryview = packed[offset : offset + _STEP]
            while pending and not inflater.eof:
                inflated += len(inflater.decompress(pending, _STEP))
                if inflated > info.file_size:
                    raise corrupt
                pending = inflater.unconsumed_tail
    except zlib.error:
        raise corrupt from None
    if not inflater.eof or inflated != info.file_size:
        raise corrupt


def _read(archive: zipfile.ZipFile, entry: str, name: str) -> bytes:
    try:
        return archive.read(entry)
    except _ZIP_ERRORS:
        raise InvalidInput(
            f"{name}: entry {entry[:100]!r} is corrupt", hint=_ARCHIVE_HINT
        ) from None


@dataclass(frozen=True)
class _Entries:
    """The entries of an open archive for skopsstate, read under the archive limits."""

    archive: zipfile.ZipFile
    name: str

    def read(self, entry: str) -> bytes:
        return _read(self.archive, entry, self.name)

    def members(self, entry: str) -> Iterator[tuple[str, bytes]]:
        # a sparse matrix is an .npz, a zip archive of its own held to the same limits
        with _open_archive(self.read(entry), f"{self.name}: {entry}") as npz:
            for info in npz.infolist():
                yield info.filename, _read(npz, info.filename, self.name)


def _read_schema(archive: zipfile.ZipFile, name: str) -> dict[str, Any]:
    try:
        info = archive.getinfo("schema.json")
    except KeyError:
        raise InvalidInput(f"{name} has no schema.json; it is not a skops file") from None
    if info.file_size > MAX_SCHEMA_BYTES:
        raise InvalidInput(f"{name}: schema.json is larger than {MAX_SCHEMA_BYTES} bytes")

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # skops reads the last of repeated keys; an auditor must not see another one
        mapping: dict[str, Any] = {}
        for key, value in pairs:
            if key in mapping:
                raise InvalidInput(f"{name}: schema.json repeats the key {key[:100]!r}")
            mapping[key] = value
        return mapping

    raw = _read(archive, "schema.json", name)
    try:
        # NaN and Infinity stay allowed: skops writes them for float parameters
        schema = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_keys)
    except RecursionError:
        raise InvalidInput(f"{name}: schema.json nests too deep") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError among them
        raise InvalidInput(f"{name}: schema.json is not UTF-8 JSON") from None
    if not isinstance(schema, dict):
        raise InvalidInput(f"{name}: schema.json is not a skops schema")
    return schema


# -- the schema ---------------------------------------------------------------------------------


def _nodes(schema: dict[str, Any], name: str) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """Every node dict of the schema in pre-order, the position of each one's parent node (-1 for
    the root) and the subtree size (in nodes) of each.

    Any dict with a loader, module or class key is a node, wherever it sits, so no part of the
    schema that skops could turn into a node escapes the audit.
    """
    nodes: list[dict[str, Any]] = []
    parents: list[int] = []
    stack: list[tuple[Any, int, int]] = [(schema, -1, 0)]  # value, parent node, node depth
    while stack:
        value, parent, depth = stack.pop()
        if isinstance(value, list):
            stack.extend((item, parent, depth) for item in reversed(value))
            continue
        if not isinstance(value, dict):
            continue
        if any(key in value for key in _NODE_KEYS):
            if depth >= MAX_DEPTH:
                raise InvalidInput(f"{name}: schema.json nests deeper than {MAX_DEPTH} nodes")
            nodes.append(value)
            parents.append(parent)
            parent, depth = len(nodes) - 1, depth + 1
        stack.extend((item, parent, depth) for item in reversed(list(value.values())))
    if not nodes or nodes[0] is not schema:
        raise InvalidInput(f"{name}: schema.json is not a skops schema")
    sizes = [1] * len(nodes)
    for index in range(len(nodes) - 1, 0, -1):  # a parent precedes its children
        sizes[parents[index]] += sizes[index]
    return nodes, parents, sizes


def _check_ids(
    archive: zipfile.ZipFile, nodes: list[dict[str, Any]], sizes: list[int], name: str
) -> None:
    """Refuse an object id that stands for different subtrees.

    skops builds the first node with an id and reuses it wherever the id appears again, and
    writes an object's full state at every reference. A file that puts a small stub where a big
    subtree was makes skops' own audit walk shared subtrees again and again (exponential time)
    or a node contain itself; one that puts another state under a known id would have skops
    build, there, something other than what this audit read there.
    """
    first: dict[int, int] = {}  # id -> position of its first node
    repeated: list[tuple[int, int]] = []  # (earlier, later) positions of one id
    for position, (node, size) in enumerate(zip(nodes, sizes, strict=True)):
        node_id = node.get("__id__")
        if node_id is None:
            continue
        if not isinstance(node_id, int) or isinstance(node_id, bool):
            raise InvalidInput(f"{name}: schema.json has a node id that is not a number")
        earlier = first.setdefault(node_id, position)
        if earlier == position:
            continue
        if sizes[earlier] != size:
            raise InvalidInput(
                f"{name}: schema.json reuses the object id {node_id} for another object"
            )
        repeated.append((earlier, position))
    if not repeated:
        return
    prints = _fingerprints(archive, nodes, sizes, repeated, name)
    for earlier, later in repeated:
        if prints[earlier] != prints[later]:
            raise InvalidInput(
                f"{name}: schema.json reuses the object id {nodes[later]['__id__']} "
                "for another object"
            )


def _fingerprints(
    archive: zipfile.ZipFile,
    nodes: list[dict[str, Any]],
    sizes: list[int],
    repeated: list[tuple[int, int]],
    name: str,
) -> dict[int, str]:
    """A digest of the subtree of every node within a repeated id's subtree, by position, the
    same for every writing of one object: skops gives the temporaries of each writing (a state
    dict, the list of its key types, a tree's node array) fresh ids and entry names, so ids are
    left out and an entry counts by its bytes. Children are digested before their parents, so
    this takes time linear in the schema and the entries.
    """
    positions = {id(node): position for position, node in enumerate(nodes)}
    entries: dict[str, str] = {}
    prints: dict[int, str] = {}

    def entry(file: str) -> str:
        if file not in entries:
            try:
                archive.getinfo(file)
            except KeyError:
                raise InvalidInput(
                    f"{name}: schema.json names an entry the archive lacks"
                ) from None
            entries[file] = hashlib.sha256(_read(archive, file, name)).hexdigest()
        return entries[file]

    # tagged tuples: JSON holds no tuples, so no value can pass for a child node or an entry
    def canonical(value: Any, top: bool = False) -> Any:
        if isinstance(value, dict):
            position = positions.get(id(value))
            if position is not None and not top:
                return ("node", prints[position])
            return (
                "dict",
                tuple(
                    (
                        key,
                        ("file", entry(item))
                        if key == "file" and isinstance(item, str)
                        else canonical(item),
                    )
                    for key, item in sorted(value.items())
                    if key != "__id__"
                ),
            )
        if isinstance(value, list):
            return ("list", tuple(canonical(item) for item in value))
        return value

    # the nodes within a repeated id's subtree: +1 where one starts, -1 past its end
    cover = [0] * (len(nodes) + 1)
    for position in {p for pair in repeated for p in pair}:
        cover[position] += 1
        cover[position + sizes[position]] -= 1
    inside = list(itertools.accumulate(cover))
    try:
        for position in range(len(nodes) - 1, -1, -1):
            if inside[position]:
                text = repr(canonical(nodes[position], top=True))
                prints[position] = hashlib.sha256(text.encode()).hexdigest()
    except RecursionError:
        raise InvalidInput(f"{name}: schema.json nests too deep") from None
    return prints


def _bit_generator(node: dict[str, Any], name: str) -> str:
    # numpy names the bit generator class in its state, and skops calls numpy.random.<that name>
    try:
        text = node["content"]["bit_generator"]["content"]["bit_generator"]["content"]
        generator = json.loads(text)
    except (KeyError, TypeError, ValueError, RecursionError):
        generator = None
    if not isinstance(generator, str) or "." in generator:
        raise InvalidInput(f"{name}: a numpy Generator without a bit generator name")
    return f"numpy.random.{generator}"


def _problem(loader: str, type_name: str, name: str) -> str | None:
    """Why skops must not build this node, or None."""
    allowed = _loader_types()
    if loader == "FunctionNode":
        if type_name in trusted_functions():
            return None
        return (
            f"{name}: function reference {type_name} refused (FunctionTransformer(func=...) "
            "and other callables cannot be loaded safely)"
        )
    if loader not in allowed:
        return f"{name}: loader {loader} (for {type_name}) refused; aidlc does not allow it"
    if type_name in allowed[loader]:
        return None
    if type_name in trusted_types():
        return f"{name}: {type_name} refused as a {loader}"
    return f"{name}: untrusted type {type_name} refused"


def _misplaced_score_function(
    nodes: list[dict[str, Any]], parents: list[int], position: int, type_name: str, name: str
) -> str | None:
    """Why a score function must not be loaded where it stands, or None: it is trusted only as
    the score_func attribute of a univariate feature selector.
    """
    state = parents[position]
    owner = parents[state] if state >= 0 else -1
    if (
        owner >= 0
        and nodes[state].get("__loader__") == "DictNode"
        and isinstance(nodes[state].get("content"), dict)
        and nodes[state]["content"].get("score_func") is nodes[position]
        and nodes[owner].get("__loader__") == "ObjectNode"
        and type_of(nodes[owner]) in _score_func_owners()
    ):
        return None
    return (
        f"{name}: function reference {type_name} refused (it is trusted only as the "
        "score_func of a univariate feature selector)"
    )


def _npz_size(archive: zipfile.ZipFile, entry: str, name: str) -> int:
    # A sparse matrix is an .npz, a zip archive of its own that scipy inflates: same limits.
    with _open_archive(_read(archive, entry, name), f"{name}: {entry[:100]}") as nested:
        return sum(info.file_size for info in nested.infolist())


def _node_type(node: dict[str, Any], name: str) -> tuple[str, str]:
    loader, module, cls = (node.get(key) for key in _NODE_KEYS)
    if not (isinstance(loader, str) and isinstance(module, str) and isinstance(cls, str)):
        raise InvalidInput(f"{name}: schema.json has a node without loader, module or class")
    # skops imports the module and takes the class from it: a dotted class would let one type
    # name stand for another split of module and class
    if not module or not cls or "." in cls:
        raise InvalidInput(f"{name}: schema.json names a type {module[:100]}.{cls[:100]}")
    return loader, f"{module}.{cls}"


def _audit(archive: zipfile.ZipFile, schema: dict[str, Any], name: str) -> SkopsAudit:
    protocol = schema.get("protocol")
    if type(protocol) is not int or protocol not in _PROTOCOLS:
        raise InvalidInput(
            f"{name}: skops protocol {str(protocol)[:20]} is not supported",
            hint="save the model again with skops 0.16",
        )
    nodes, parents, sizes = _nodes(schema, name)
    _check_ids(archive, nodes, sizes, name)
    entries = {info.filename: info.file_size for info in archive.infolist()}
    types: set[str] = set()
    problems: dict[str, str] = {}  # type name -> why it is refused, in schema order
    # (node id, entry) -> loader: skops reads an entry once per node that names it (a node
    # whose id it has seen is reused), so a file naming one big entry from many nodes would
    # make it read that entry many times
    reads: dict[tuple[int, str], str] = {}
    for position, node in enumerate(nodes):
        loader, type_name = _node_type(node, name)
        types.add(type_name)
        problem = _problem(loader, type_name, name)
        if problem is None and loader == "FunctionNode" and type_name in _score_functions():
            problem = _misplaced_score_function(nodes, parents, position, type_name, name)
        if problem is not None:
            problems.setdefault(type_name, problem)
        if loader == "RandomGeneratorNode":
            generator = _bit_generator(node, name)
            types.add(generator)
            if generator not in _bit_generators():
                problems.setdefault(generator, f"{name}: untrusted type {generator} refused")
        if "file" in node:
            entry = node["file"]
            if not isinstance(entry, str) or entry not in entries:
                raise InvalidInput(f"{name}: schema.json names an entry the archive lacks")
            node_id = node.get("__id__") or -1 - position  # skops memoizes non-zero ids only
            reads[(node_id, entry)] = loader
    if problems:
        first = next(iter(problems.values()))
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(first + more, hint=_TYPE_HINT)
    inflated = {
        entry: _npz_size(archive, entry, name)
        for (_, entry), loader in reads.items()
        if loader == "SparseMatrixNode"
    }
    read = sum(entries[entry] + inflated.get(entry, 0) for _, entry in reads)
    if read > MAX_EXPANDED_BYTES:
        raise InvalidInput(f"{name} makes skops read more than {MAX_EXPANDED_BYTES} bytes")
    check_fitted_state(_Entries(archive, name), nodes, parents, name)
    return SkopsAudit(
        root=f"{schema['__module__']}.{schema['__class__']}",
        types=frozenset(types),
        entries=len(entries),
        expanded=sum(entries.values()),
    )


def audit_skops(data: bytes, *, name: str = "the skops file") -> SkopsAudit:
    """Check a skops file without importing anything it names: archive limits, schema, and every
    node's loader and type against aidlc's lists. InvalidInput names what is refused.

    >>> audit_skops(b"\\x80\\x04K\\x01.", name="model.skops")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    aidlc.errors.InvalidInput: model.skops holds a pickle stream; aidlc never loads pickle (...)
    """
    with _open_archive(data, name) as archive:
        return _audit(archive, _read_schema(archive, name), name)


def load_skops(data: bytes, *, name: str = "the skops file") -> Any:
    """The object in a skops file that `audit_skops` accepts, built by skops trusting exactly the
    types the audit found.
    """
    audit = audit_skops(data, name=name)
    # defence in depth: the audit already refused anything else
    untrusted = sorted(audit.types - trusted_types() - trusted_functions())
    if untrusted:
        raise InvalidInput(f"{name}: untrusted type {untrusted[0]} refused", hint=_TYPE_HINT)
    import skops.io

    try:
        return skops.io.loads(data, trusted=sorted(audit.types))
    except Exception:  # skops, NumPy and scikit-learn raise many kinds on a malformed state
        raise InvalidInput(f"{name} is not a valid skops file") from None


# -- LightGBM as MLflow saves it ------------------------------------------------------------------

_LGBM_CLASSIFIER = "lightgbm.sklearn.LGBMClassifier"
_LGBM_REGRESSOR = "lightgbm.sklearn.LGBMRegressor"


def _attributes(node: Any, types: tuple[str, ...]) -> dict[str, Any] | None:
    """The attribute nodes of an ObjectNode of one of `types`, or None."""
    if not (
        isinstance(node, dict)
        and node.get("__loader__") == "ObjectNode"
        and f"{node.get('__module__')}.{node.get('__class__')}" in types
    ):
        return None
    state = node.get("content")
    if not (isinstance(state, dict) and state.get("__loader__") == "DictNode"):
        return None
    attributes = state.get("content")
    return attributes if isinstance(attributes, dict) else None


def _json_value(node: Any) -> Any:
    if not (isinstance(node, dict) and node.get("__loader__") == "JsonNode"):
        raise ValueError("not a JsonNode")
    content = node.get("content")
    if not isinstance(content, str):
        raise ValueError("a JsonNode without content")
    return json.loads(content)


def _classes(archive: zipfile.ZipFile, node: Any, name: str) -> list[Any]:
    import numpy as np

    if not (isinstance(node, dict) and node.get("__loader__") == "NdArrayNode"):
        raise ValueError("classes are not an array")
    if node.get("type") == "json":  # an object array: one node per class
        items = node.get("content")
        if not isinstance(items, list):
            raise ValueError("an object array without items")
        return [_json_value(item) for item in items]
    entry = node.get("file")
    if node.get("type") != "numpy" or not isinstance(entry, str):
        raise ValueError("an array without its file")
    array = np.load(io.BytesIO(_read(archive, entry, name)), allow_pickle=False)
    if array.ndim != 1:
        raise ValueError("classes are not a vector")
    return list(array.tolist())


def lightgbm_from_skops(
    data: bytes, *, name: str = "the skops file"
) -> tuple[str, list[Any] | None]:
    """(model text, class labels or None) of an LGBMClassifier or LGBMRegressor that
    `mlflow.lightgbm.save_model` wrote as skops. Nothing is constructed and skops is not called:
    the text and labels are read from the schema and one .npy entry.
    """
    with _open_archive(data, name) as archive:
        schema = _read_schema(archive, name)
        model = _attributes(schema, (_LGBM_CLASSIFIER, _LGBM_REGRESSOR))
        booster = _attributes(model.get("_Booster") if model else None, ("lightgbm.basic.Booster",))
        try:
            if model is None or booster is None:
                raise ValueError("not an LGBMModel holding a Booster")
            text = _json_value(booster.get("_handle"))
            if not isinstance(text, str) or not text.startswith("tree\n"):
                raise ValueError("the booster holds no model text")
            if schema["__class__"] != "LGBMClassifier":
                return text, None
            classes = model.get("_classes", model.get("classes_"))
            return text, _classes(archive, classes, name)
        except (ValueError, RecursionError, EOFError, OSError):
            raise InvalidInput(
                f"{name} is not a LightGBM model saved by MLflow's lightgbm flavour",
                hint="save it with mlflow.lightgbm.save_model, or save the booster's model text",
            ) from None
