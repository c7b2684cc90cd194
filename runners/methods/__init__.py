"""Training and evaluation methods; each module registers its methods on import."""
