"""ptdry's database layer: DBInterface, Repo, Selector, artifact stores, the embedded server."""
