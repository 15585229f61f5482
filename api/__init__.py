"""HTTP: the JSON API and the pages. Routers translate HTTP into engine calls, nothing more."""
