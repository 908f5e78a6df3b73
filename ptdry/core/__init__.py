"""ptdry's core layer: Module, ObjectDef, metamodules and properties. Imports nothing above it."""
