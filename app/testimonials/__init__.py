"""The merchant's view of submitted testimonials: watch, approve or hide, download."""
