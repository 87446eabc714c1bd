"""The demo page (make demo): one static page that calls the REST API from the browser."""
