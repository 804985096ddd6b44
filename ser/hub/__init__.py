"""Model folders and the Hub: versioned, atomic, sha256-verified folders (``artifacts``), model cards
(``card``), push and pull (``transfer``)."""
