"""Executors of compiled programs: simulator, spin analysis, target runners."""
