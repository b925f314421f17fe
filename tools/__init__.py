"""The tools the assistant can call. Each tool is one module; `registry.py` lists them."""
