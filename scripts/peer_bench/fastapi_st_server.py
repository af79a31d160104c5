"""The server most teams write first: FastAPI + sentence-transformers, one model call per request.

    python fastapi_st_server.py MODEL_DIR --port 8080 [--host 127.0.0.1]

POST /v1/embeddings takes OpenAI's body ({"input": str | [str], "model": ...}) and answers in
OpenAI's shape, so the peer benchmark's client and bodies are the same for every server. GET /health
answers once the model is loaded. No batching across requests: the route is a plain `def`, so
FastAPI runs each request's `encode` on its thread pool, as the FastAPI documentation suggests for
blocking work; PyTorch's own threads do the rest. Everything else is left at its default.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer


class EmbeddingsBody(BaseModel):
    input: str | list[str]
    model: str | None = None


def create_app(model_dir: str) -> FastAPI:
    """The app around one SentenceTransformer (its modules.json says pooling and normalization)."""
    model = SentenceTransformer(model_dir, device="cpu")
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    def embeddings(body: EmbeddingsBody) -> dict[str, object]:
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors = model.encode(texts, convert_to_numpy=True)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": row.tolist()}
                for i, row in enumerate(vectors)
            ],
            "model": body.model or model_dir,
            # Not counted: tokenizing twice would charge this server for work the others share.
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_dir), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
