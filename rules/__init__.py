"""Rules: rule packs as data (packs.py), the compliance engine (engine.py) and explanations (explain.py)."""
