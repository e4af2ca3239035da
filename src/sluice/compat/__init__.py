"""OpenAI chat-completions <-> native provider formats, for ``/compat`` (pure: no I/O).

``chat`` reads and checks the OpenAI request and builds OpenAI responses, chunks and errors;
``anthropic`` and ``gemini`` translate to and from one provider each, streams included (stateful
translators fed raw SSE bytes); ``sse`` is the incremental event-stream decoder they share.
"""
