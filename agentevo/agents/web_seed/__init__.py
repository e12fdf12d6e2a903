"""The seed web agent: a LangGraph loop that reads the page and sends one browser action per model call.

An evolvable agent package (copied into its sandbox as ``agent``): it imports only itself, the contract
(``agentevo/contract.py``) and the browser tools (``agentevo/web/tools.py``) that the host places beside it.
Host code never imports it.
"""
