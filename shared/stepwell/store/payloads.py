"""Large payloads live in S3 behind a pointer, transparently.

A payload attribute over the threshold (32 KB by default, ``STEPWELL_PAYLOAD_THRESHOLD``) is
written to the payload store under ``runs/<run>/<key>/<attempt>/<field>-<digest>.json`` and the
item keeps ``{"$ref": "s3://bucket/key"}``. The digest of the content is part of the key, so an
object never changes once written: two invocations racing on one run may both upload, but they
can never overwrite what the winner's item points to, and a reader may cache objects forever.
Items are also kept under :data:`MAX_ITEM_BYTES` whatever the threshold says: the largest
payloads move out until the item fits.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from stepwell.store import codec

DEFAULT_THRESHOLD = 32 * 1024
"""Payloads larger than this (bytes of JSON) go to the payload store."""
MAX_ITEM_BYTES = 350 * 1024
"""No item is written larger than this (DynamoDB's own limit is 400 KB)."""


class PayloadStore(Protocol):
    """Where large payloads go: immutable objects addressed by key. The runtime's wiring gives
    the store one (an S3 bucket: ``stepwell.runtime.aws.payloads``), or none."""

    def put(self, key: str, body: bytes) -> str:
        """Store ``body`` under ``key``; returns the URI a pointer holds."""
        ...

    def get(self, uri: str) -> bytes:
        """The body stored at ``uri``."""
        ...


class PayloadTooLarge(ValueError):
    """An item cannot be made small enough (no payload store, or nothing left to move)."""


class MemoryPayloadStore:
    """Payloads in a dict (unit tests, in-process runs)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes) -> str:
        with self._lock:
            self.objects[key] = bytes(body)
        return f"memory://{key}"

    def get(self, uri: str) -> bytes:
        with self._lock:
            return self.objects[uri.removeprefix("memory://")]


def threshold_from_env() -> int:
    """``STEPWELL_PAYLOAD_THRESHOLD`` (bytes), 32 KB when unset."""
    return int(os.environ.get("STEPWELL_PAYLOAD_THRESHOLD", DEFAULT_THRESHOLD))


class Offloader:
    """Moves large payload attributes out of items and brings them back.

    Objects are immutable (content-addressed keys), so the ones this process wrote or read are
    remembered: re-writing an unchanged 5 MB output costs no upload, re-reading it no download.
    """

    def __init__(
        self,
        store: PayloadStore | None,
        threshold: int = DEFAULT_THRESHOLD,
        max_item_bytes: int = MAX_ITEM_BYTES,
        cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.threshold = threshold
        self.max_item_bytes = max_item_bytes
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, str] = OrderedDict()
        """uri -> text, least recently used first."""
        self._cached_bytes = 0
        self._written: OrderedDict[str, str] = OrderedDict()
        """object key -> uri of objects known to exist."""
        self.uploads = 0
        self.downloads = 0

    # -- writing ----------------------------------------------------------------------------
    def offload(
        self,
        attrs: dict[str, Any],
        fields: Iterable[str],
        prefix: str,
        threshold: int | None = None,
    ) -> dict[str, Any]:
        """``attrs`` with its large payload ``fields`` replaced by pointers (changed in place);
        ``threshold`` overrides the store's (0 moves every payload out)."""
        limit = self.threshold if threshold is None else threshold
        fields = [f for f in fields if isinstance(attrs.get(f), str)]
        for field in fields:
            text = attrs[field]
            if len(text.encode()) > limit and codec.pointer_uri(text) is None:
                attrs[field] = codec.pointer(self.put_text(prefix, field, text))
        while codec.item_size(attrs) > self.max_item_bytes:
            inline = [f for f in fields if codec.pointer_uri(attrs[f]) is None]
            if not inline:
                raise PayloadTooLarge(
                    f"item {prefix} is {codec.item_size(attrs)} bytes with every payload moved "
                    f"out (limit {self.max_item_bytes})"
                )
            largest = max(inline, key=lambda f: len(attrs[f]))
            attrs[largest] = codec.pointer(self.put_text(prefix, largest, attrs[largest]))
        return attrs

    def put_text(self, prefix: str, name: str, text: str, suffix: str = ".json") -> str:
        """Store ``text`` under a content-addressed key; returns its URI."""
        if self.store is None:
            raise PayloadTooLarge(
                f"{prefix}/{name} is {len(text.encode())} bytes, over the "
                f"{self.threshold}-byte threshold, and no payload bucket is configured "
                "(set STEPWELL_BUCKET)"
            )
        body = text.encode()
        key = f"{prefix}/{name}-{hashlib.sha256(body).hexdigest()[:24]}{suffix}"
        with self._lock:
            known = self._written.get(key)
            if known is not None:
                self._written.move_to_end(key)
                return known
        uri = self.store.put(key, body)
        with self._lock:
            self.uploads += 1
            self._written[key] = uri
            if len(self._written) > 100_000:
                self._written.popitem(last=False)
            self._remember(uri, text)
        return uri

    # -- reading ----------------------------------------------------------------------------
    def resolve(self, attrs: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """``attrs`` with pointers of ``fields`` replaced by the texts they point to."""
        out = dict(attrs)
        for field in fields:
            text = out.get(field)
            if isinstance(text, str):
                uri = codec.pointer_uri(text)
                if uri is not None:
                    out[field] = self.get_text(uri)
        return out

    def get_text(self, uri: str) -> str:
        """The text stored at ``uri`` (cached: objects never change)."""
        with self._lock:
            cached = self._cache.get(uri)
            if cached is not None:
                self._cache.move_to_end(uri)
                return cached
        if self.store is None:
            raise PayloadTooLarge(f"{uri}: no payload bucket is configured (set STEPWELL_BUCKET)")
        text = self.store.get(uri).decode()
        with self._lock:
            self.downloads += 1
            self._remember(uri, text)
        return text

    def _remember(self, uri: str, text: str) -> None:
        size = len(text)
        if size > self.cache_bytes // 4 or uri in self._cache:
            return
        self._cache[uri] = text
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped)
