"""``agentevo serve``: the configured backbone as an OpenAI-compatible endpoint."""

from __future__ import annotations

import threading

import typer

from agentevo.cli.common import clear_errors, config, console, interruptible, stop_on_sigterm
from agentevo.runs import RunDir


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, help="TCP port; 0 picks a free one."),
) -> None:
    """Serve the configured backbone (`llm.backbone`) over HTTP and print its URL; Ctrl-C or SIGTERM stops it
    (exit code 130).

    For `local` and `openai` this is agentevo's own server (calls are recorded under the archives
    folder, and a request's `model` may name a loaded LoRA adapter of `llamacpp`); for `vllm` it is the vLLM
    server itself, with LoRA adapters loadable at runtime.
    """
    from agentevo.gateway import Gateway
    from agentevo.gateway.backends import supervised_server
    from agentevo.llm.vllm_server import VLLMServer
    from agentevo.serving.backbone import open_backend

    settings = config()
    stop_on_sigterm()  # like Ctrl-C: the backbone server it started stops too (else it is orphaned)
    if settings.llm.backbone == "vllm":  # the vLLM server itself listens where the gateway would
        vllm = settings.llm.vllm.model_copy(update={"host": host, "port": port or settings.llm.vllm.port})
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"vllm": vllm})})
    # `auto` is llama.cpp on CPUs (ready in about a second), in-process `local` elsewhere: no vLLM start for a few callers.
    with clear_errors(), interruptible("stopped serving"), open_backend(settings) as backend:
        server = supervised_server(backend)
        if isinstance(server, VLLMServer):
            url = server.base_url
            note = "the vLLM server itself; load adapters with POST /v1/load_lora_adapter"
            gateway = None
        else:
            run = RunDir(settings.archives_dir)
            gateway = Gateway(backend, run_dir=run.path, run_id=run.run_id, open_access=True).start(
                host=host, port=port
            )
            url, note = gateway.url, f"calls are recorded in {gateway.recorder.path}"
        print(url, flush=True)
        console.print(
            f"serving [bold]{settings.llm.backbone}[/] backbone `{settings.llm.model}` at {url} ({note})"
        )
        try:
            threading.Event().wait()  # until Ctrl-C or SIGTERM: serving ends with exit code 130
        finally:
            if gateway is not None:
                gateway.stop()
