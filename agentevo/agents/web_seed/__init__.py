"""The seed web agent: a LangGraph loop that reads the page and sends one browser action per model call.

An evolvable agent package (copied into its sandbox as ``agent``): it imports only itself and the
contract package (``agentevo/contract/``: its core and the browser tools), which the host places beside it.
Host code never imports it.
"""
