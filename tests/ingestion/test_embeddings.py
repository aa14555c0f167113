"""The embedders: the local ONNX model for real, and the OpenAI path against a local stand-in server."""

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import SecretStr

from app.ingestion import embeddings
from app.ingestion.embeddings import EmbeddingModelError, LocalEmbedder, OpenAIEmbedder, get_embedder
from tests.support.fake_openai import FakeOpenAI, fake_vector

MITOCHONDRIA = "The mitochondria is the powerhouse of the cell"
PARAPHRASE = "Cells get their energy from mitochondria"
UNRELATED = "The stock market fell sharply on Monday"
LONG = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. " * 70  # ~5,300 chars


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder(batch_size=4)


def test_vectors_have_384_dimensions_and_unit_length(local: LocalEmbedder) -> None:
    vectors = np.array(local.embed_documents([MITOCHONDRIA, UNRELATED, "", "x"]))

    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert local.dimension == 384
    assert local.model_name == "all-MiniLM-L6-v2-int8"


def test_the_same_text_gives_the_same_vector(local: LocalEmbedder) -> None:
    first = local.embed_query(MITOCHONDRIA)

    assert local.embed_query(MITOCHONDRIA) == first
    assert local.embed_documents([MITOCHONDRIA])[0] == first


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(local: LocalEmbedder) -> None:
    query, paraphrase, unrelated = np.array(local.embed_documents([MITOCHONDRIA, PARAPHRASE, UNRELATED]))

    assert query @ paraphrase > 0.6
    assert query @ unrelated < 0.2


def test_long_input_is_cut_at_256_tokens(local: LocalEmbedder) -> None:
    vector = local.embed_query(LONG)

    assert len(LONG) > 5000
    assert len(vector) == 384
    # Whatever follows the first 256 tokens does not count.
    np.testing.assert_allclose(local.embed_query(LONG + UNRELATED * 20), vector, atol=1e-6)


def test_no_texts_give_no_vectors(local: LocalEmbedder) -> None:
    assert local.embed_documents([]) == []


def test_a_batch_gives_the_same_vectors_as_one_by_one(local: LocalEmbedder) -> None:
    # Lengths vary (and are sorted for batching inside), so this also checks the order is restored.
    texts = [LONG, MITOCHONDRIA, "", PARAPHRASE, LONG[:1000], UNRELATED, "a", LONG[:300], MITOCHONDRIA]

    batched = np.array(local.embed_documents(texts))
    one_by_one = np.array([local.embed_query(text) for text in texts])

    # Padding is masked out of attention and pooling, so only float rounding could differ.
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-5)


def test_dropping_the_nan_guards_keeps_the_vectors(local: LocalEmbedder) -> None:
    import onnxruntime as ort

    model = embeddings._onnx_model(local.threads)
    exported = ort.InferenceSession(
        embeddings._verified_model_bytes(embeddings._model_file()), providers=["CPUExecutionProvider"]
    )
    as_exported = embeddings._OnnxModel(exported, model.tokenizer, model.input_names)
    token_ids = [e.ids for e in model.tokenizer.encode_batch([MITOCHONDRIA, LONG, "", UNRELATED])]

    np.testing.assert_allclose(
        embeddings._run(model, token_ids), embeddings._run(as_exported, token_ids), rtol=0, atol=1e-6
    )


def test_a_model_file_with_another_checksum_is_refused(tmp_path: Path) -> None:
    impostor = tmp_path / "model.onnx"
    impostor.write_bytes(b"not the model")

    with pytest.raises(EmbeddingModelError, match="sha256"):
        embeddings._verified_model_bytes(impostor)


def test_the_local_model_is_the_default() -> None:
    embedder = get_embedder(SimpleNamespace(embedding_dim=384))

    assert isinstance(embedder, LocalEmbedder)
    assert get_embedder(SimpleNamespace(embeddings="local", embedding_dim=384)).model_name == (
        "all-MiniLM-L6-v2-int8"
    )


def test_the_local_model_refuses_another_column_dimension() -> None:
    with pytest.raises(ValueError, match="EMBEDDING_DIM"):
        get_embedder(SimpleNamespace(embedding_dim=1536))


# --- OpenAI-compatible endpoint -------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def openai_settings(url: str, **overrides: object) -> SimpleNamespace:
    values = {
        "embeddings": "openai",
        "embedding_model": None,
        "embedding_dim": 384,
        "openai_api_key": SecretStr("sk-test"),
        "openai_base_url": url,
    }
    return SimpleNamespace(**values | overrides)


def test_openai_embeddings_come_from_the_configured_endpoint(openai: FakeOpenAI) -> None:
    openai.embedding_requests.clear()
    embedder = get_embedder(openai_settings(openai.base_url))

    documents = embedder.embed_documents([MITOCHONDRIA, UNRELATED])
    query = embedder.embed_query(PARAPHRASE)

    assert isinstance(embedder, OpenAIEmbedder)
    assert (embedder.model_name, embedder.dimension) == ("text-embedding-3-small", 384)
    assert documents == [fake_vector(MITOCHONDRIA, 384), fake_vector(UNRELATED, 384)]
    assert query == fake_vector(PARAPHRASE, 384)
    first = openai.embedding_requests[0]
    assert first["path"] == "/v1/embeddings"
    assert first["auth"] == "Bearer sk-test"
    # Plain strings (no tiktoken ids, nothing downloaded), shortened to the column's dimension.
    assert first["body"]["input"] == [MITOCHONDRIA, UNRELATED]
    assert (first["body"]["model"], first["body"]["dimensions"]) == ("text-embedding-3-small", 384)
    assert get_embedder(openai_settings(openai.base_url)).embed_documents([]) == []


def test_openai_vectors_of_the_wrong_dimension_are_refused(openai: FakeOpenAI) -> None:
    embedder = get_embedder(openai_settings(openai.base_url, embedding_model="nomic-embed-text"))

    assert embedder.model_name == "nomic-embed-text"
    with pytest.raises(ValueError, match="12-d vectors but EMBEDDING_DIM is 384"):
        embedder.embed_query(MITOCHONDRIA)


def test_openai_embedding_tokens_are_counted_per_call(openai: FakeOpenAI) -> None:
    embedder = get_embedder(openai_settings(openai.base_url))

    vectors, tokens = embeddings.counted(embedder, embedder.embed_documents, [MITOCHONDRIA, UNRELATED])
    assert vectors == [fake_vector(MITOCHONDRIA, 384), fake_vector(UNRELATED, 384)]
    assert tokens == 1  # what the endpoint reported for the one request
    assert embeddings.counted(embedder, embedder.embed_query, PARAPHRASE)[1] == 1
    local = LocalEmbedder()
    assert embeddings.counted(local, len, "no model call")[1] == 0
