# Demo page (issue 15): one static page (demo/static/) that calls the REST API from the browser.
#   make serve && make demo       # then open the printed URL
# config.properties allows exactly the page's origin (cors_allowed_origin=http://127.0.0.1:8090).

PY ?= .venv/bin/python
DEMO_PORT ?= 8090
DEMO_API ?= http://127.0.0.1:8080

.PHONY: demo demo-screenshot

demo: $(VENV)/.installed  ## serve the demo page on 127.0.0.1:$(DEMO_PORT) (after make serve) and print its URL
	$(PY) -m demo.serve --port $(DEMO_PORT) --api $(DEMO_API) --model $(MODEL_NAME)

demo-screenshot: $(VENV)/.installed  ## docs/demo.png: the demo page with a real answer, taken with headless chromium
	$(PY) -m demo.screenshot --port $(DEMO_PORT) --api $(DEMO_API) --out docs/demo.png
