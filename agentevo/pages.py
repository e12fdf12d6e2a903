"""What every HTML page agentevo writes shares: its stylesheet (the run report, ``agentevo.report``, and a
comparison's page, ``agentevo.compare.report``). A leaf, so a comparison does not import the run report, which
sits above ``compare``."""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 0 1.5em 3em; color: #222; }
header { border-bottom: 1px solid #ddd; margin-bottom: 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.meta { color: #666; font-size: 0.9em; margin: 0.2em 0; }
#node-details { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; font-size: 0.9em; }
#node-details .columns { display: flex; gap: 1.5em; align-items: flex-start; }
#node-details .columns > div { flex: 1; min-width: 0; }
pre { background: #f6f8fa; padding: 0.6em; overflow: auto; font-size: 0.85em; white-space: pre-wrap; }
pre.diff { max-height: 520px; } .add { color: #116329; background: #dafbe1; } .del { color: #82071e; background: #ffebe9; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; }
#node-table tr[data-node] { cursor: pointer; } #node-table tr[data-node]:hover { background: #f0f4ff; }
tr.selected { background: #fff3c4; } tr.active { font-weight: bold; } .pass { color: #116329; } .fail { color: #82071e; }
.absent { color: #666; font-style: italic; }
"""
