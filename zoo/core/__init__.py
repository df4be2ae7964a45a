"""The foundation every other layer may use: atomic file writes, the weight format, registries with
helpful errors, cache and data folders, and provenance records. Imports numpy and the standard
library only; nothing here knows about graphs, tasks, models or backends."""
