"""Search methods: one-shot methods are LightningModules (oneshot/), multi-trial methods are loops."""
