"""Testing notebooks' kernel outputs with pytest: the `pytest11` plugin (plugin.py) and
what it stands on (a local server, settings, output comparison, the notebook runner).

Nothing here is imported unless pytest loads the plugin, and the plugin itself imports
the heavy parts (jupyter_server, pycrdt, tornado) only when a test uses them.
"""
