"""Hydra plugins of lsnas (Hydra finds plugins only under the ``hydra_plugins`` namespace package)."""
