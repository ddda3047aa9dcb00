"""The try-on service: the exported artefact (no model or training code), micro-batching, the
people's photo store and the aiohttp app with its web page."""
