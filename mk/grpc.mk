# gRPC stubs (issue 4). Generated, not committed: see docs/grpc.md ("Why the stubs are generated").
# The .proto files live in proto/; protoc sees them under the virtual path ja_ner/proto_gen/ so
# the generated modules import each other as `from ja_ner.proto_gen import ...` (no sed fix-ups).

PY ?= .venv/bin/python
PROTO_SRC := proto/inference.proto proto/management.proto
PROTO_OUT := ja_ner/proto_gen
PROTO_STAMP := $(PROTO_OUT)/.stamp

.PHONY: protos protos-clean

protos: $(PROTO_STAMP)

# Include paths come from the installed packages: google/rpc/status.proto from
# googleapis-common-protos, google/protobuf/empty.proto from grpcio-tools.
$(PROTO_STAMP): $(PROTO_SRC) mk/grpc.mk
	rm -rf $(PROTO_OUT)
	mkdir -p $(PROTO_OUT)
	$(PY) -m grpc_tools.protoc \
	  -I$(PROTO_OUT)=proto \
	  -I"$$($(PY) -c 'import google.rpc, os; print(os.path.dirname(os.path.dirname(list(google.rpc.__path__)[0])))')" \
	  -I"$$($(PY) -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')" \
	  --python_out=. --grpc_python_out=. --pyi_out=. \
	  $(PROTO_OUT)/inference.proto $(PROTO_OUT)/management.proto
	printf '"""Generated gRPC stubs (make protos); not in git."""\n' > $(PROTO_OUT)/__init__.py
	$(PY) -c "import ja_ner.proto_gen.inference_pb2_grpc, ja_ner.proto_gen.management_pb2_grpc"
	touch $@

protos-clean:
	rm -rf $(PROTO_OUT)
