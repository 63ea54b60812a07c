"""regionstat core: the one owner of settings, errors, the catalogue model and the landing-batch store."""
