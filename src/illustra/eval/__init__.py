"""In-domain evaluation: retrieval quality against judged queries (``illustra eval``).

``metrics`` holds the pure metric functions; ``retrieval`` runs queries through a search function,
scores them next to a random-ranking baseline and saves results into the collection.
"""
