"""LLM backbones: one chat-model interface over the embedded model, vLLM and OpenAI-compatible APIs."""
