"""Approved testimonials shown to the world: the JSON feed, the embeddable wall and its
widget script, the share page and the public media URLs. Nothing here needs a login, and
everything goes through ``app.testimonials.moderation.public_clause``."""
