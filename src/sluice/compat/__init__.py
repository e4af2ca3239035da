"""OpenAI's API <-> native provider formats, for ``/compat`` (pure: no I/O).

``chat`` reads and checks the OpenAI chat request and builds OpenAI responses, chunks and errors;
``messages`` walks its messages and tools for a translating provider; ``anthropic`` and ``gemini``
translate to and from one provider each, streams included; ``stream`` is what their stream
translators (fed raw SSE bytes) share, ``sse`` the incremental event-stream decoder under it.
``embeddings`` is the OpenAI side of embeddings, ``gemini_embed`` its Gemini translation; ``models``
builds the model list.
"""
