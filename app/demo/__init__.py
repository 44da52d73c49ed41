"""The demo shop for ``make run``: its history made by the real code paths (``seed``), the
short videos its testimonials carry (``videos``) and ``flask seed-demo`` (``cli``)."""
