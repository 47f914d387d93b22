"""The dedup index beside the graph: MinHash signatures and embeddings of every live persona.

It answers "does this persona already exist?" on insert (expansion, extraction) and is the cache of
signatures and vectors the batch pass works from. It lives in `data_dir/dedup/<graph>/` and carries
a fingerprint of the graph it mirrors (persona count, live count, newest `created_at`); `sync`
compares it with the graph and, when they differ (merges, purges, filter verdicts, inserts made
without the index, a crash between a graph write and `save`), adds what is missing and drops what
is no longer live. The index is one file replaced atomically: a crash leaves the old or the new one.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from typing import BinaryIO
from pathlib import Path

import numpy as np
from datasketch import MinHashLSH
from pydantic import BaseModel

from personagraph.graph.model import persona_id
from personagraph.graph.store import LIVE_STATUSES, GraphStore
from personagraph.stage import ProgressFn
from personagraph.config import DedupConfig
from personagraph.dedup.embedding import DIM, VECTOR_DTYPE, as_float32, embed
from personagraph.dedup.minhash import estimated_jaccard
from personagraph.dedup.pairs import confirmed, differs_on_one_side, jaccard_floor, minhasher, new_lsh

ARRAY_CHUNK = 16_384  # texts hashed and embedded between two progress reports
FORMAT_VERSION = 2  # 2: character shingles (`shingles` in the settings) and the texts; older files are rebuilt
INDEX_FILE = "index.npz"


class Fingerprint(BaseModel):
    """The graph-side watermark the index was last synced to."""

    total: int = 0
    live: int = 0
    newest: float = 0.0


class Match(BaseModel):
    """An existing persona a description duplicates, and how that was decided."""

    id: str
    similarity: float
    method: str


def fingerprint(store: GraphStore) -> Fingerprint:
    """The graph's current fingerprint (one aggregate query)."""
    return Fingerprint(**store.persona_fingerprint())


class DedupIndex:
    """Signatures (n x num_perm) and unit vectors (n x 384, `VECTOR_DTYPE`) of live personas, with LSH and faiss over them."""

    def __init__(self, config: DedupConfig, folder: Path | None = None) -> None:
        self.config = config
        self.folder = folder
        self.hasher = minhasher(config)
        self.use_minhash = config.method in ("minhash", "both")
        self.use_embedding = config.method in ("embedding", "both")
        self.ids: list[str] = []
        self.created: list[float] = []
        self.texts: list[str] = []  # the descriptions: the shape of a difference is read from the words
        self.signatures = np.empty((0, config.num_perm), dtype=np.uint32)
        self.vectors = np.empty((0, DIM), dtype=VECTOR_DTYPE)
        self.fingerprint = Fingerprint()
        self._pos: dict[str, int] = {}
        self._last_lookup: dict[str, int] = {}
        self._last_arrays: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self._lsh: MinHashLSH | None = None  # built on the first lookup: the batch pass never needs it
        self._faiss = None  # the same: it holds a float32 copy of the vectors (1.5 GB at 1M)

    # -- building ----------------------------------------------------------------------------------
    @property
    def faiss(self):  # noqa: ANN201 - faiss has no type stubs
        """An exact faiss index over the live vectors, ids = row positions, built when first asked for."""
        if self._faiss is None:
            import faiss

            self._faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
            rows = self.live_rows()
            for start in range(0, len(rows), ARRAY_CHUNK):
                part = rows[start : start + ARRAY_CHUNK]
                self._faiss.add_with_ids(as_float32(self.vectors[part]), part)
        return self._faiss

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, persona: str) -> bool:
        return persona in self._pos

    def add(self, ids: Sequence[str], descriptions: Sequence[str], created_at: Sequence[float] | None = None,
            progress: ProgressFn | None = None) -> None:
        """Index new personas (ids already indexed are skipped); `progress` counts the texts hashed and embedded."""
        fresh = [i for i, pid in enumerate(ids) if pid not in self._pos]
        if not fresh:
            return
        new_ids = [ids[i] for i in fresh]
        texts = [descriptions[i] for i in fresh]
        sigs, vecs = self._arrays(texts, progress)
        created = [float(created_at[i]) if created_at is not None else 0.0 for i in fresh]
        self._append(new_ids, texts, created, sigs, vecs)

    def _append(self, ids: list[str], texts: list[str], created: list[float], sigs: np.ndarray | None,
                vecs: np.ndarray | None) -> None:
        start = len(self.ids)
        self.ids.extend(ids)
        self.texts.extend(texts)
        self.created.extend(created)
        for k, pid in enumerate(ids):
            self._pos[pid] = start + k
        positions = np.arange(start, start + len(ids), dtype=np.int64)
        # The first batch is taken as it is: a copy of a million vectors would double the peak.
        if sigs is not None:
            self.signatures = np.concatenate([self.signatures, sigs]) if len(self.signatures) else sigs
            if self._lsh is not None:
                self._lsh_insert(self._lsh, positions.tolist())
        if vecs is not None:
            vecs = vecs.astype(VECTOR_DTYPE, copy=False)  # an index saved before vectors were float16
            self.vectors = np.concatenate([self.vectors, vecs]) if len(self.vectors) else vecs
            if self._faiss is not None:
                self._faiss.add_with_ids(as_float32(vecs), positions)

    def _lsh_insert(self, lsh: MinHashLSH, positions: Sequence[int]) -> None:
        with lsh.insertion_session() as session:
            for pos in positions:
                session.insert(pos, self.hasher.lean(self.signatures[pos]), check_duplication=False)

    @property
    def lsh(self) -> MinHashLSH:
        """datasketch's LSH over the live signatures, built when first asked for."""
        if self._lsh is None:
            self._lsh = new_lsh(self.config)
            self._lsh_insert(self._lsh, self.live_rows().tolist())
        return self._lsh

    def remove(self, ids: Sequence[str]) -> None:
        """Forget personas (merged away, purged, rejected); rows are compacted on the next `save`."""
        gone = [self._pos.pop(pid) for pid in ids if pid in self._pos]
        if not gone:
            return
        if self._lsh is not None:
            for pos in gone:
                self._lsh.remove(pos)
        if self._faiss is not None:
            self._faiss.remove_ids(np.asarray(gone, dtype=np.int64))

    def sync(self, store: GraphStore, progress: ProgressFn | None = None) -> int:
        """Bring the index in line with the graph's live personas; returns how many rows changed."""
        now = fingerprint(store)
        if now == self.fingerprint:
            return 0
        live: dict[str, tuple[str, float]] = {
            n["id"]: (n["description"], float(n.get("created_at") or 0.0)) for n in store.iter_personas(LIVE_STATUSES)
        }
        stale = [pid for pid in self._pos if pid not in live]
        self.remove(stale)
        missing = [pid for pid in live if pid not in self._pos]
        self.add(missing, [live[p][0] for p in missing], [live[p][1] for p in missing], progress)
        self.fingerprint = now
        return len(stale) + len(missing)

    def confirm(self, store: GraphStore) -> None:
        """After the caller's own graph writes (inserts it also indexed, merges, deletes): re-fingerprint.

        If the graph's live count equals the index's size, the index takes the graph's fingerprint
        without rereading it; otherwise someone else wrote meanwhile and a full `sync` runs.
        """
        now = fingerprint(store)
        if now.live == len(self):
            self.fingerprint = now
        else:
            self.sync(store)

    def forget(self, store: GraphStore, ids: Sequence[str]) -> None:
        """Drop personas the caller just merged away or deleted, then `confirm` against the graph."""
        self.remove(ids)
        self.confirm(store)

    def created_at(self, persona: str) -> float:
        """Creation time of an indexed persona (used by the survivor rule)."""
        return self.created[self._pos[persona]]

    # -- lookup ------------------------------------------------------------------------------------
    def lookup(self, description: str) -> Match | None:
        """The existing persona `description` duplicates, or None."""
        return self.lookup_many([description])[0]

    def lookup_many(self, descriptions: Sequence[str]) -> list[Match | None]:
        """For each description, the best existing duplicate (exact id, MinHash or embedding) or None."""
        out: list[Match | None] = [None] * len(descriptions)
        pending = []
        for i, text in enumerate(descriptions):
            pid = persona_id(text)
            if pid in self._pos:
                out[i] = Match(id=pid, similarity=1.0, method="exact")
            else:
                pending.append(i)
        if not pending or not self._pos:
            return out
        texts = [descriptions[i] for i in pending]
        sigs, vecs = self._arrays(texts)
        self._last_lookup = {t: k for k, t in enumerate(texts)}
        self._last_arrays = (sigs, vecs)
        if sigs is not None:
            for k, (i, sig) in enumerate(zip(pending, sigs)):
                out[i] = self._best(out[i], self._minhash_match(sig, None if vecs is None else vecs[k], texts[k]))
        if vecs is not None:
            sims, poss = self.faiss.search(as_float32(vecs), 1)
            for k, (i, s, pos) in enumerate(zip(pending, sims[:, 0].tolist(), poss[:, 0].tolist())):
                if pos < 0 or s < self.config.embedding_threshold:
                    continue
                if sigs is not None and float((self.signatures[pos] == sigs[k]).mean()) < self.config.min_jaccard:
                    continue  # as in the batch pass (`pairs.pairs_from_arrays`)
                out[i] = self._best(out[i], Match(id=self.ids[pos], similarity=s, method="embedding"))
        return out

    def _arrays(self, texts: list[str], progress: ProgressFn | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Signatures and vectors of `texts`, reusing the last lookup's rows (expansion looks a batch
        up, then adds the new ones: embedding them twice would double its dedup cost).

        Computed `ARRAY_CHUNK` texts at a time into arrays allocated once, so `progress` can count
        them (a first pass over a million personas embeds for tens of minutes)."""
        rows = [self._last_lookup.get(t) for t in texts]
        if texts and all(r is not None for r in rows):
            sigs, vecs = self._last_arrays
            return (None if sigs is None else sigs[rows]), (None if vecs is None else vecs[rows])
        n = len(texts)
        sigs = np.empty((n, self.config.num_perm), dtype=np.uint32) if self.use_minhash else None
        vecs = np.empty((n, DIM), dtype=VECTOR_DTYPE) if self.use_embedding else None
        for start in range(0, n, ARRAY_CHUNK):
            chunk = texts[start : start + ARRAY_CHUNK]
            if sigs is not None:
                sigs[start : start + len(chunk)] = self.hasher.signatures(chunk)
            if vecs is not None:
                vecs[start : start + len(chunk)] = embed(chunk, self.config.embed_batch_size, self.config.embedding_precision)
            if progress is not None:
                progress("hashing and embedding personas" if vecs is not None else "hashing personas",
                         start + len(chunk), n)
        return sigs, vecs

    def _minhash_match(self, sig: np.ndarray, vec: np.ndarray | None, text: str) -> Match | None:
        """Best LSH candidate by estimated Jaccard that is confirmed as in the batch pass (`pairs.confirmed`)."""
        cands = np.asarray(self.lsh.query(self.hasher.lean(sig)), dtype=np.int64)
        if not len(cands):
            return None
        sims = estimated_jaccard(self.signatures[cands], sig[None, :])
        if vec is not None:
            keep = confirmed(as_float32(self.vectors[cands]) @ as_float32(vec), lambda i: differs_on_one_side(self.texts[cands[i]], text),
                             self.config)
            cands, sims = cands[keep], sims[keep]
        if not len(cands):
            return None
        best = int(np.argmax(sims))
        if sims[best] < jaccard_floor(self.config):
            return None
        return Match(id=self.ids[cands[best]], similarity=float(sims[best]), method="minhash")

    @staticmethod
    def _best(a: Match | None, b: Match | None) -> Match | None:
        if a is None or (b is not None and b.similarity > a.similarity):
            return b
        return a

    def match_or_add(self, ids: Sequence[str], descriptions: Sequence[str], created_at: float = 0.0) -> list[str]:
        """Canonical id of each new persona: an existing duplicate's id, else its own (then indexed).

        Items are decided in order, so two duplicates inside one batch resolve to the first of them.
        """
        out: list[str] = []
        for pid, text in zip(ids, descriptions):
            match = self.lookup(text) if pid not in self._pos else Match(id=pid, similarity=1.0, method="exact")
            if match is None:
                self.add([pid], [text], [created_at])
                out.append(pid)
            else:
                out.append(match.id)
        return out

    # -- persistence -------------------------------------------------------------------------------
    def _meta(self) -> dict[str, object]:
        # What the stored arrays depend on; thresholds are not (the LSH is built from the config on first lookup).
        c = self.config
        return {
            "version": FORMAT_VERSION, "method": c.method, "num_perm": c.num_perm, "shingles": c.shingles,
            "shingle_size": c.shingle_size,
            "seed": c.seed, "model": "all-MiniLM-L6-v2", "precision": c.embedding_precision,
        }

    def live_rows(self) -> np.ndarray:
        """Row positions of personas still indexed, in insertion order."""
        return np.asarray(sorted(self._pos.values()), dtype=np.int64)

    def live_arrays(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Signatures and vectors of the live rows (`live_rows` order; None for an unused method):
        views of the stored arrays when no row was removed since they were built, else copies."""
        rows = self.live_rows()
        if len(rows) == len(self.ids):  # every row is live: rows == 0..n-1
            pick = slice(None)
        else:
            pick = rows  # type: ignore[assignment]
        return (self.signatures[pick] if self.use_minhash else None), (self.vectors[pick] if self.use_embedding else None)

    def save(self) -> None:
        """Write the index (compacted to live rows) as one file, replaced atomically."""
        if self.folder is None:
            raise ValueError("this index has no folder to save to")
        self.folder.mkdir(parents=True, exist_ok=True)
        rows = self.live_rows()
        state = {"meta": self._meta(), "fingerprint": self.fingerprint.model_dump()}
        arrays = {
            "state": np.array(json.dumps(state)),
            "ids": np.array([self.ids[r] for r in rows], dtype=str),
            "created": np.array([self.created[r] for r in rows], dtype=np.float64),
            **pack_texts([self.texts[r] for r in rows]),
        }
        # The live rows of the big arrays are gathered a chunk at a time as they are written: after a
        # pass merged 650k of a million personas, copies of them were 0.65 GB on top of the arrays.
        pick = None if len(rows) == len(self.ids) else rows
        if self.use_minhash:
            arrays["signatures"] = (self.signatures, pick)
        if self.use_embedding:
            arrays["vectors"] = (self.vectors, pick)
        tmp = self.folder / "index.tmp.npz"
        with open(tmp, "wb") as f:
            write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / INDEX_FILE)

    @classmethod
    def load(cls, config: DedupConfig, folder: Path) -> DedupIndex:
        """The saved index in `folder`; an empty one if there is none or it was built with other settings."""
        index = cls(config, folder)
        path = folder / INDEX_FILE
        if not path.is_file():
            return index
        with np.load(path) as data:
            state = json.loads(str(data["state"]))
            if state["meta"] != index._meta():
                return index
            index._append(
                data["ids"].tolist(), unpack_texts(data), data["created"].tolist(),
                data["signatures"] if index.use_minhash else None,
                data["vectors"] if index.use_embedding else None,
            )
        index.fingerprint = Fingerprint(**state["fingerprint"])
        return index


def write_npz(f: BinaryIO, arrays: Mapping[str, np.ndarray | tuple[np.ndarray, np.ndarray | None]]) -> None:
    """What `np.savez` writes (`np.load` reads it), where an entry may be `(array, rows)`: those rows
    of the array (all of them when None), gathered and written `ARRAY_CHUNK` rows at a time."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            array, rows = value if isinstance(value, tuple) else (np.asarray(value), None)
            if array.dtype.hasobject:
                raise ValueError(f"{name}: object arrays are not written (np.savez would pickle them)")
            count = 0 if not array.ndim else len(array) if rows is None else len(rows)
            header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
                      "shape": (count, *array.shape[1:]) if array.ndim else ()}
            with archive.open(f"{name}.npy", mode="w", force_zip64=True) as out:
                np.lib.format.write_array_header_2_0(out, header)
                if not array.ndim:
                    out.write(array.tobytes())
                    continue
                for start in range(0, count, ARRAY_CHUNK):
                    part = array[start : start + ARRAY_CHUNK] if rows is None else array[rows[start : start + ARRAY_CHUNK]]
                    out.write(np.ascontiguousarray(part).tobytes())


def pack_texts(texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Texts as one UTF-8 buffer and the end offset of each: a fixed-width numpy string array pads every
    row to the longest (4 bytes a character), 1.2 GB for a million descriptions of up to 300 characters."""
    # One growing buffer, not a list of encoded texts joined at the end: that list and the join were
    # two copies of the texts (0.4 GB at a million) at the moment the index is saved.
    blob = bytearray()
    ends = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        blob += text.encode("utf-8", "surrogatepass")
        ends[i] = len(blob)
    return {"texts_utf8": np.frombuffer(blob, dtype=np.uint8), "texts_ends": ends}


def unpack_texts(data: Mapping[str, np.ndarray]) -> list[str]:
    """The texts `pack_texts` stored (or the fixed-width array of files written before it)."""
    if "texts_utf8" not in data:
        return data["texts"].tolist()
    blob = data["texts_utf8"].tobytes()
    ends = data["texts_ends"].tolist()
    starts = [0, *ends[:-1]]
    return [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends)]


def index_folder(data_dir: Path, graph: str) -> Path:
    """Where the dedup index of graph `graph` lives: beside the graph, in `data_dir/dedup/<graph>`."""
    return Path(data_dir) / "dedup" / graph


def open_index(store: GraphStore, config: DedupConfig, folder: Path, progress: ProgressFn | None = None) -> DedupIndex:
    """Load the index from `folder`, sync it with the graph, and save it if that changed anything."""
    index = DedupIndex.load(config, folder)
    if index.sync(store, progress):
        index.save()
    return index
