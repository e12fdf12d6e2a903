"""The served backbone, composed: the configured model (``llm``), its watchdog, and the active LoRA adapter
(``train``'s registry), handed to the gateway as one ``Backend``.

It sits above ``gateway``, ``llm`` and ``train``, so that none of them imports another to put these together:
:mod:`agentevo.serving.backbone` opens the backbone, :mod:`agentevo.serving.adapters` loads an adapter into it.
"""
