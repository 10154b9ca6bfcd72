"""The audit log's cryptography: RFC 6962 Merkle trees, canonical event bytes, signed tree heads.

Pure functions and small value classes; storing events and signing at checkpoints is `core.audit`.
Hashes are 32-byte SHA-256 digests; every `from_json` treats its input as hostile.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aidlc.core.strictjson import reject_constant, unique_object
from aidlc.errors import IntegrityError, InvalidInput

__all__ = [
    "EMPTY_ROOT",
    "FORMAT_VERSION",
    "HASH_SIZE",
    "MAX_SAFE_INTEGER",
    "TREE_HEAD_DOMAIN",
    "CompactRange",
    "ConsistencyProof",
    "InclusionProof",
    "TreeHead",
    "consistency_proof",
    "decode_event",
    "encode_event",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "public_key_id",
    "root",
    "sign_tree_head",
    "verify_consistency",
    "verify_inclusion",
    "verify_tree_head",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
TREE_HEAD_DOMAIN = b"aidlc-tree-head/1\n"
# Integers beyond 2**53 - 1 lose precision in JavaScript and change their RFC 8785 form.
MAX_SAFE_INTEGER = 2**53 - 1
FORMAT_VERSION = 1

_MAX_DEPTH = 64
# A path has one hash per level: 63 levels cover every size below 2**63, and sizes stop at 2**53.
_MAX_PATH = 64
_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_SIGNATURE_SIZE = 64

_sha256 = hashlib.sha256
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{86}==")
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")


# ---------------------------------------------------------------- hashing (RFC 6962 §2.1)


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf: SHA-256(0x00 ‖ data).

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: SHA-256(0x01 ‖ left ‖ right).

    >>> node_hash(leaf_hash(b""), leaf_hash(b"\\x00")).hex()[:16]
    'fac54203e7cc696c'
    """
    return _sha256(b"\x01" + left + right).digest()


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    # map(len) keeps the check at a few percent of the hashing cost.
    if leaf_hashes and set(map(len, leaf_hashes)) != {HASH_SIZE}:
        raise InvalidInput(f"every leaf hash must be {HASH_SIZE} bytes")


def _root(level: Sequence[bytes]) -> bytes:
    # Level by level: pairing neighbours and promoting an odd last node yields the RFC 6962 tree
    # (split at the largest power of two below n), at one SHA-256 per interior node.
    n = len(level)
    if n == 0:
        return EMPTY_ROOT
    sha256 = _sha256
    while n > 1:
        # zip(it, it) walks neighbours in pairs; strict=False drops the odd last node for now.
        pairs = iter(level)
        upper = [
            sha256(b"\x01" + left + right).digest()
            for left, right in zip(pairs, pairs, strict=False)
        ]
        if n & 1:
            upper.append(level[-1])
        level = upper
        n = len(upper)
    return level[0]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash MTH of a sequence of leaf hashes; SHA-256(b"") for none.

    >>> root([]).hex()[:16]
    'e3b0c44298fc1c14'
    >>> a, b = leaf_hash(b""), leaf_hash(b"\\x00")
    >>> root([a, b]) == node_hash(a, b)
    True
    """
    _check_leaf_hashes(leaf_hashes)
    return _root(leaf_hashes)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path PATH(index, D[n]) of RFC 6962 §2.1.1, ordered from the leaf up.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(3)]
    >>> inclusion_proof(2, leaves) == [node_hash(leaves[0], leaves[1])]
    True
    """
    n = len(leaf_hashes)
    if isinstance(index, bool) or not 0 <= index < n:
        raise InvalidInput(f"leaf index {index} is outside a tree of {n} leaves")
    _check_leaf_hashes(leaf_hashes)
    siblings: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append(_root(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            siblings.append(_root(leaf_hashes[lo : lo + k]))
            lo += k
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof PROOF(old_size, D[n]) of RFC 6962 §2.1.2; empty if old_size is 0 or n.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(3)]
    >>> consistency_proof(2, leaves) == [leaves[2]]
    True
    """
    n = len(leaf_hashes)
    if isinstance(old_size, bool) or not 0 <= old_size <= n:
        raise InvalidInput(f"old tree size {old_size} is outside 0..{n}")
    _check_leaf_hashes(leaf_hashes)
    if old_size in (0, n):
        return []
    # SUBPROOF unrolled: each step keeps the half holding the old tree's edge and records the
    # other half's hash; `whole` stays true while the old tree is a left-aligned complete subtree.
    siblings: list[bytes] = []
    lo, hi, whole = 0, n, True
    while old_size != hi:
        k = _split(hi - lo)
        if old_size <= lo + k:
            siblings.append(_root(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            siblings.append(_root(leaf_hashes[lo : lo + k]))
            lo += k
            whole = False
    if not whole:
        siblings.append(_root(leaf_hashes[lo:hi]))
    siblings.reverse()
    return siblings


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows leaf `index` of a tree of `tree_size` leaves under `root`.

    The algorithm of RFC 9162 §2.1.3.2; malformed arguments give False, never an exception.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(5)]
    >>> verify_inclusion(leaves[3], 3, 5, inclusion_proof(3, leaves), root(leaves))
    True
    """
    if not (_is_hash(leaf_hash) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    if isinstance(index, bool) or isinstance(tree_size, bool) or not 0 <= index < tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree (old_size, old_root) is a prefix of (new_size, new_root).

    The algorithm of RFC 9162 §2.1.4.2 for 0 < old_size < new_size. Equal sizes need an empty
    proof and equal roots; old_size 0 needs an empty proof and the empty tree's root.

    >>> leaves = [leaf_hash(bytes([i])) for i in range(7)]
    >>> old, new = root(leaves[:3]), root(leaves)
    >>> verify_consistency(3, 7, old, new, consistency_proof(3, leaves))
    True
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if isinstance(old_size, bool) or isinstance(new_size, bool) or not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        empty_new = new_size > 0 or new_root == EMPTY_ROOT
        return not proof and old_root == EMPTY_ROOT and empty_new
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class CompactRange:
    """The right frontier of an append-only tree: O(log n) state, appends and root.

    It holds the roots of the perfect subtrees that make up the tree, largest (leftmost) first,
    one per set bit of `size`.

    >>> frontier = CompactRange()
    >>> for i in range(5):
    ...     frontier.append(leaf_hash(bytes([i])))
    >>> frontier.root() == root([leaf_hash(bytes([i])) for i in range(5)])
    True
    >>> CompactRange.from_json(frontier.to_json()) == frontier
    True
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._hashes: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, leftmost first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash, merging the equal-sized subtrees it completes."""
        if not _is_hash(leaf_hash):
            raise InvalidInput(f"a leaf hash must be {HASH_SIZE} bytes")
        hashes, carry, h = self._hashes, self._size, leaf_hash
        while carry & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            carry >>= 1
        hashes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append each leaf hash in order (the same steps as `append`, inlined for speed)."""
        hashes, size, sha256 = self._hashes, self._size, _sha256
        try:
            for leaf in leaf_hashes:
                if not _is_hash(leaf):
                    raise InvalidInput(f"a leaf hash must be {HASH_SIZE} bytes")
                carry, h = size, leaf
                while carry & 1:
                    h = sha256(b"\x01" + hashes.pop() + h).digest()
                    carry >>= 1
                hashes.append(h)
                size += 1
        finally:
            self._size = size

    def root(self) -> bytes:
        """The tree hash of everything appended; folds the frontier right to left."""
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = _sha256(b"\x01" + h + r).digest()
        return r

    def to_json(self) -> dict[str, Any]:
        """`{"size": n, "hashes": [hex, ...]}`, the form kept in a state row."""
        return {"size": self._size, "hashes": [h.hex() for h in self._hashes]}

    @classmethod
    def from_json(cls, obj: object) -> CompactRange:
        """Rebuild from `to_json()` output (a dict or its JSON text); InvalidInput if malformed."""
        doc = _document(obj, "compact range")
        _expect_keys(doc, {"size", "hashes"}, set(), "compact range")
        size = _int_field(doc, "size", "compact range", 0, MAX_SAFE_INTEGER)
        hashes = _hash_list_field(doc, "hashes", "compact range", _MAX_PATH)
        if len(hashes) != size.bit_count():
            raise InvalidInput(
                f"compact range: a tree of {size} leaves has {size.bit_count()} frontier hashes, "
                f"not {len(hashes)}"
            )
        frontier = cls()
        frontier._hashes = list(hashes)
        frontier._size = size
        return frontier

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


# ---------------------------------------------------------------- canonical event encoding


def _check_event_value(event: Mapping[str, Any]) -> None:
    stack: list[tuple[object, int, str]] = [(event, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        where = f"event field {path[:80]}" if path else "event"
        if value is None or isinstance(value, (bool, str)):
            continue
        if isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise InvalidInput(
                    f"{where}: integer is outside ±(2**53 - 1)",
                    hint="store it as a string",
                )
            continue
        if isinstance(value, float):
            raise InvalidInput(f"{where}: floats are not allowed", hint="store it as a string")
        if depth > _MAX_DEPTH:
            raise InvalidInput(f"{where}: nested deeper than {_MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidInput(f"{where}: key {repr(key)[:40]} is not a string")
                if _NON_BMP.search(key):
                    raise InvalidInput(
                        f"{where}: key {key[:40]!r} has a character outside the Basic Multilingual "
                        "Plane, where Python and RFC 8785 sort keys differently"
                    )
                stack.append((item, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                stack.append((item, depth + 1, f"{path}[{i}]"))
        else:
            raise InvalidInput(
                f"{where}: {type(value).__name__} is not allowed",
                hint="use str, int, bool, None, list or dict",
            )


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an event: sorted keys, no whitespace, UTF-8.

    For the values allowed here (str, int within ±(2**53 - 1), bool, None, list, dict with str
    keys free of non-BMP characters) the output is exactly RFC 8785 (JCS). Floats are refused so
    that every language produces the same bytes; pass them as strings.

    >>> encode_event({"b": [1, True, None], "a": "é"})
    b'{"a":"\\xc3\\xa9","b":[1,true,null]}'
    """
    if not isinstance(event, Mapping):
        raise InvalidInput(f"an event must be a mapping, not {type(event).__name__}")
    event = event if isinstance(event, dict) else dict(event)
    _check_event_value(event)
    text = json.dumps(
        event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("event: text holds a lone surrogate, not valid Unicode") from exc


def _reject_float(text: str) -> object:
    raise InvalidInput(f"floats are not allowed ({text[:40]})")


def _parse_json(data: bytes | bytearray | str, what: str) -> Any:
    if len(data) > _MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{what}: larger than {_MAX_DOCUMENT_BYTES} bytes")
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=unique_object,
            parse_constant=reject_constant,
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}") from None
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError: absurd nesting.
        raise InvalidInput(f"{what}: not valid UTF-8 JSON ({type(exc).__name__})") from None


def decode_event(data: bytes) -> dict[str, Any]:
    """Parse canonical event bytes; InvalidInput unless `encode_event` would give back `data`.

    >>> decode_event(b'{"a":1}')
    {'a': 1}
    """
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidInput(f"event bytes expected, not {type(data).__name__}")
    try:
        text = bytes(data).decode("utf-8")
        event = json.loads(
            text,
            object_pairs_hook=unique_object,
            parse_constant=reject_constant,
            parse_float=_reject_float,
        )
    except InvalidInput as exc:
        raise InvalidInput(f"event: {exc.message}") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"event: not valid UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(event, dict):
        raise InvalidInput("event: the top level must be a JSON object")
    if encode_event(event) != data:
        raise InvalidInput("event: bytes are not in canonical form")
    return event


# ---------------------------------------------------------------- signed tree heads


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex characters of SHA-256 over the raw 32-byte Ed25519 public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput("a tree head timestamp must be timezone-aware")
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds") + "Z"


def _check_timestamp(value: object, what: str) -> str:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise InvalidInput(f"{what}: timestamp must look like 2025-01-31T12:00:00.000000Z")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise InvalidInput(f"{what}: timestamp {value} is not a real date and time") from None
    return value


def _check_head_fields(tree_size: object, root_hash: object, key_id: object, what: str) -> None:
    if (
        not isinstance(tree_size, int)
        or isinstance(tree_size, bool)
        or not 0 <= tree_size <= MAX_SAFE_INTEGER
    ):
        raise InvalidInput(f"{what}: tree_size must be an integer in 0..2**53 - 1")
    if not _is_hash(root_hash):
        raise InvalidInput(f"{what}: root_hash must be {HASH_SIZE} bytes")
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise InvalidInput(f"{what}: key_id must be 16 lowercase hex characters")


def _head_message(tree_size: int, root_hash: bytes, timestamp: str, key_id: str) -> bytes:
    body = {
        "v": FORMAT_VERSION,
        "tree_size": tree_size,
        "root_hash": root_hash.hex(),
        "timestamp": timestamp,
        "key_id": key_id,
    }
    return TREE_HEAD_DOMAIN + encode_event(body)


@dataclass(frozen=True)
class TreeHead:
    """A signed statement that the log held `tree_size` events with root `root_hash`.

    The signature is Ed25519 over `signed_message()`: b"aidlc-tree-head/1\\n" followed by the
    canonical encoding of `to_json()` without its "signature" field.
    """

    tree_size: int
    root_hash: bytes
    timestamp: str
    key_id: str
    signature: bytes

    def __post_init__(self) -> None:
        _check_head_fields(self.tree_size, self.root_hash, self.key_id, "tree head")
        _check_timestamp(self.timestamp, "tree head")
        if not isinstance(self.signature, bytes) or len(self.signature) != _SIGNATURE_SIZE:
            raise InvalidInput(f"tree head: signature must be {_SIGNATURE_SIZE} bytes")

    def signed_message(self) -> bytes:
        """The exact bytes the signature covers."""
        return _head_message(self.tree_size, self.root_hash, self.timestamp, self.key_id)

    def to_json(self) -> dict[str, Any]:
        """Hashes as lowercase hex, the signature as padded standard base64 (RFC 4648 §4)."""
        return {
            "v": FORMAT_VERSION,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: object) -> TreeHead:
        """Parse `to_json()` output (a dict or JSON text, e.g. a HEAD.json); InvalidInput if bad."""
        what = "tree head"
        doc = _document(obj, what)
        _expect_keys(
            doc, {"v", "tree_size", "root_hash", "timestamp", "key_id", "signature"}, set(), what
        )
        _version(doc, what)
        signature = doc["signature"]
        if not isinstance(signature, str) or not _BASE64.fullmatch(signature):
            raise InvalidInput(f"{what}: signature must be 88 characters of padded base64")
        raw = base64.b64decode(signature, validate=True)
        if base64.b64encode(raw).decode("ascii") != signature:
            raise InvalidInput(f"{what}: signature is not canonical base64")
        return cls(
            tree_size=_int_field(doc, "tree_size", what, 0, MAX_SAFE_INTEGER),
            root_hash=_hash_field(doc, "root_hash", what),
            timestamp=_check_timestamp(doc["timestamp"], what),
            key_id=_str_field(doc, "key_id", what, _KEY_ID, "16 lowercase hex characters"),
            signature=raw,
        )


def sign_tree_head(
    private_key: Ed25519PrivateKey,
    tree_size: int,
    root_hash: bytes,
    timestamp: datetime | str | None = None,
) -> TreeHead:
    """Sign (tree_size, root_hash) at `timestamp` (an aware datetime, an RFC 3339 string, or now).

    >>> key = Ed25519PrivateKey.generate()
    >>> head = sign_tree_head(key, 0, EMPTY_ROOT, "2025-01-31T12:00:00.000000Z")
    >>> verify_tree_head(head, key.public_key())
    True
    """
    if timestamp is None:
        timestamp = datetime.now(UTC)
    ts = _format_timestamp(timestamp) if isinstance(timestamp, datetime) else timestamp
    ts = _check_timestamp(ts, "tree head")
    key_id = public_key_id(private_key.public_key())
    _check_head_fields(tree_size, root_hash, key_id, "tree head")
    signature = private_key.sign(_head_message(tree_size, root_hash, ts, key_id))
    return TreeHead(tree_size, root_hash, ts, key_id, signature)


def verify_tree_head(head: TreeHead, public_key: Ed25519PublicKey) -> bool:
    """Whether `head` carries this key's id and a valid signature by it."""
    if head.key_id != public_key_id(public_key):
        return False
    try:
        public_key.verify(head.signature, head.signed_message())
    except InvalidSignature:
        return False
    return True


def _check_head(head: TreeHead, public_key: Ed25519PublicKey, name: str) -> None:
    expected = public_key_id(public_key)
    if head.key_id != expected:
        raise IntegrityError(f"{name} was signed by key {head.key_id}, not by key {expected}")
    if not verify_tree_head(head, public_key):
        raise IntegrityError(f"{name} signature does not verify with key {expected}")


# ---------------------------------------------------------------- proof documents


@dataclass(frozen=True)
class InclusionProof:
    """Proof that one event is leaf `leaf_index` of the tree a signed head commits to.

    `event`, when present, is the event's canonical encoding; `check` then also confirms that it
    hashes to `leaf_hash` and that its `seq` is `leaf_index + 1`.
    """

    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]
    tree_head: TreeHead
    event: bytes | None = None

    def __post_init__(self) -> None:
        what = "inclusion proof"
        object.__setattr__(self, "audit_path", tuple(self.audit_path))
        if not isinstance(self.tree_head, TreeHead):
            raise InvalidInput(f"{what}: tree_head must be a TreeHead")
        size = self.tree_size
        if not isinstance(size, int) or isinstance(size, bool) or size != self.tree_head.tree_size:
            raise InvalidInput(f"{what}: tree_size must equal the tree head's tree_size")
        index = self.leaf_index
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
            raise InvalidInput(f"{what}: leaf_index must be in 0..tree_size - 1")
        if not _is_hash(self.leaf_hash):
            raise InvalidInput(f"{what}: leaf_hash must be {HASH_SIZE} bytes")
        if len(self.audit_path) > _MAX_PATH or not all(map(_is_hash, self.audit_path)):
            raise InvalidInput(f"{what}: audit_path must be at most {_MAX_PATH} hashes")
        if self.event is not None:
            decode_event(self.event)

    def check(self, public_key: Ed25519PublicKey) -> None:
        """Raise IntegrityError saying what fails: the head's signature, the event or the path."""
        _check_head(self.tree_head, public_key, "the tree head")
        if self.event is not None:
            if leaf_hash(self.event) != self.leaf_hash:
                raise IntegrityError("the event does not hash to leaf_hash")
            seq = decode_event(self.event).get("seq")
            if seq != self.leaf_index + 1 or isinstance(seq, bool):
                raise IntegrityError(f"the event's seq is {seq!r}, not leaf_index + 1")
        signed_root = self.tree_head.root_hash
        path = self.audit_path
        if not verify_inclusion(self.leaf_hash, self.leaf_index, self.tree_size, path, signed_root):
            raise IntegrityError("the audit path does not lead from leaf_hash to the signed root")

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether `check` passes."""
        try:
            self.check(public_key)
        except IntegrityError:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The document `aidlc audit prove` prints; see docs/audit.md."""
        doc: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
            "tree_head": self.tree_head.to_json(),
        }
        if self.event is not None:
            doc["event"] = decode_event(self.event)
        return doc

    @classmethod
    def from_json(cls, obj: object) -> InclusionProof:
        """Parse `to_json()` output (a dict or JSON text); InvalidInput if malformed."""
        what = "inclusion proof"
        doc = _document(obj, what)
        required = {"v", "leaf_index", "tree_size", "leaf_hash", "audit_path", "tree_head"}
        _expect_keys(doc, required, {"event"}, what)
        _version(doc, what)
        event = None
        if "event" in doc:
            if not isinstance(doc["event"], dict):
                raise InvalidInput(f"{what}: event must be a JSON object")
            try:
                event = encode_event(doc["event"])
            except InvalidInput as exc:
                raise InvalidInput(f"{what}: {exc}") from None
        return cls(
            leaf_index=_int_field(doc, "leaf_index", what, 0, MAX_SAFE_INTEGER),
            tree_size=_int_field(doc, "tree_size", what, 0, MAX_SAFE_INTEGER),
            leaf_hash=_hash_field(doc, "leaf_hash", what),
            audit_path=_hash_list_field(doc, "audit_path", what, _MAX_PATH),
            tree_head=_head_field(doc, "tree_head", what),
            event=event,
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the log behind `new_head` extends the log behind `old_head` unchanged."""

    old_head: TreeHead
    new_head: TreeHead
    consistency_path: tuple[bytes, ...]

    def __post_init__(self) -> None:
        what = "consistency proof"
        object.__setattr__(self, "consistency_path", tuple(self.consistency_path))
        if not isinstance(self.old_head, TreeHead) or not isinstance(self.new_head, TreeHead):
            raise InvalidInput(f"{what}: old_head and new_head must be TreeHeads")
        if self.old_head.tree_size > self.new_head.tree_size:
            raise InvalidInput(f"{what}: the old head is larger than the new head")
        path = self.consistency_path
        if len(path) > 2 * _MAX_PATH or not all(map(_is_hash, path)):
            raise InvalidInput(f"{what}: consistency_path must be at most {2 * _MAX_PATH} hashes")

    def check(
        self, public_key: Ed25519PublicKey, *, old_public_key: Ed25519PublicKey | None = None
    ) -> None:
        """Raise IntegrityError unless both heads verify and the new tree extends the old one.

        `old_public_key` is for an old head signed before a key rotation.
        """
        _check_head(self.old_head, old_public_key or public_key, "the old tree head")
        _check_head(self.new_head, public_key, "the new tree head")
        old, new = self.old_head, self.new_head
        if not verify_consistency(
            old.tree_size, new.tree_size, old.root_hash, new.root_hash, self.consistency_path
        ):
            raise IntegrityError(
                f"the log of {new.tree_size} events does not extend the signed log of "
                f"{old.tree_size} events: history was rewritten"
            )

    def verify(
        self, public_key: Ed25519PublicKey, *, old_public_key: Ed25519PublicKey | None = None
    ) -> bool:
        """Whether `check` passes."""
        try:
            self.check(public_key, old_public_key=old_public_key)
        except IntegrityError:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """`{"v": 1, "old_head": {...}, "new_head": {...}, "consistency_path": [hex, ...]}`."""
        return {
            "v": FORMAT_VERSION,
            "old_head": self.old_head.to_json(),
            "new_head": self.new_head.to_json(),
            "consistency_path": [h.hex() for h in self.consistency_path],
        }

    @classmethod
    def from_json(cls, obj: object) -> ConsistencyProof:
        """Parse `to_json()` output (a dict or JSON text); InvalidInput if malformed."""
        what = "consistency proof"
        doc = _document(obj, what)
        _expect_keys(doc, {"v", "old_head", "new_head", "consistency_path"}, set(), what)
        _version(doc, what)
        return cls(
            old_head=_head_field(doc, "old_head", what),
            new_head=_head_field(doc, "new_head", what),
            consistency_path=_hash_list_field(doc, "consistency_path", what, 2 * _MAX_PATH),
        )


# ---------------------------------------------------------------- strict JSON field readers


def _document(obj: object, what: str) -> dict[str, Any]:
    if isinstance(obj, (str, bytes, bytearray)):
        obj = _parse_json(obj, what)
    if not isinstance(obj, dict):
        raise InvalidInput(f"{what}: expected a JSON object, not {type(obj).__name__}")
    return obj


def _expect_keys(doc: dict[str, Any], required: set[str], optional: set[str], what: str) -> None:
    keys = set(doc)
    missing = sorted(required - keys)
    if missing:
        raise InvalidInput(f"{what}: missing field(s) {', '.join(missing)}")
    unknown = keys - required - optional
    if unknown:
        names = ", ".join(sorted(repr(k)[:40] for k in unknown)[:5])
        raise InvalidInput(f"{what}: unknown field(s) {names}")


def _version(doc: dict[str, Any], what: str) -> None:
    if type(doc["v"]) is not int or doc["v"] != FORMAT_VERSION:
        raise InvalidInput(f"{what}: unsupported format version (expected v = {FORMAT_VERSION})")


def _int_field(doc: dict[str, Any], key: str, what: str, lo: int, hi: int) -> int:
    value = doc[key]
    if type(value) is not int or not lo <= value <= hi:
        raise InvalidInput(f"{what}: {key} must be an integer in {lo}..{hi}")
    return value


def _str_field(
    doc: dict[str, Any], key: str, what: str, pattern: re.Pattern[str], shape: str
) -> str:
    value = doc[key]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(f"{what}: {key} must be {shape}")
    return value


def _hash_from_hex(value: object) -> bytes | None:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        return None
    return bytes.fromhex(value)


def _hash_field(doc: dict[str, Any], key: str, what: str) -> bytes:
    raw = _hash_from_hex(doc[key])
    if raw is None:
        raise InvalidInput(f"{what}: {key} must be 64 lowercase hex characters")
    return raw


def _head_field(doc: dict[str, Any], key: str, what: str) -> TreeHead:
    value = doc[key]
    if not isinstance(value, dict):
        raise InvalidInput(f"{what}: {key} must be a JSON object")
    try:
        return TreeHead.from_json(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {key}: {exc.message}") from None


def _hash_list_field(doc: dict[str, Any], key: str, what: str, limit: int) -> tuple[bytes, ...]:
    value = doc[key]
    if not isinstance(value, list) or len(value) > limit:
        raise InvalidInput(f"{what}: {key} must be a list of at most {limit} hashes")
    hashes = []
    for item in value:
        raw = _hash_from_hex(item)
        if raw is None:
            raise InvalidInput(f"{what}: every entry of {key} must be 64 lowercase hex characters")
        hashes.append(raw)
    return tuple(hashes)
