"""The retrievers: parameters, fit, the index life-cycle, the query API."""
