"""Molecules: SMILES/SELFIES tokens, RDKit chemistry and the MOSES metrics.

RDKit, selfies and fcd are optional (``pip install 'vaekit[chem]'``); every function that needs
one says so in one line (:class:`~.requirements.ChemistryUnavailable`) when it is missing.
Modules: ``tokenizer`` (vocabulary, encode/decode), ``selfies_codec``, ``chemistry`` (validity,
canonical SMILES, QED, logP, SA, penalized logP, drawings), ``metrics`` (each MOSES metric),
``filters``, ``fcd`` (Fréchet ChemNet Distance) and ``moses`` (all of them at once).
"""
