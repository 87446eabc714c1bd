"""Our .proto files stay wire-compatible with TorchServe 0.12 (names and field numbers pinned here)."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor as F

from ja_ner.proto_gen import inference_pb2, management_pb2

INFERENCE = "org.pytorch.serve.grpc.inference"
MANAGEMENT = "org.pytorch.serve.grpc.management"


def fields(message) -> dict[str, tuple[int, int]]:
    return {f.name: (f.number, f.type) for f in message.DESCRIPTOR.fields}


def test_inference_messages_match_torchserve_0_12():
    assert inference_pb2.DESCRIPTOR.package == INFERENCE
    assert fields(inference_pb2.PredictionsRequest) == {
        "model_name": (1, F.TYPE_STRING),
        "model_version": (2, F.TYPE_STRING),
        "input": (3, F.TYPE_MESSAGE),  # map<string, bytes>
        "sequence_id": (4, F.TYPE_STRING),
    }
    entry = inference_pb2.PredictionsRequest.DESCRIPTOR.fields_by_name["input"].message_type
    assert entry.GetOptions().map_entry
    assert {f.name: f.type for f in entry.fields} == {"key": F.TYPE_STRING, "value": F.TYPE_BYTES}
    assert fields(inference_pb2.PredictionResponse) == {
        "prediction": (1, F.TYPE_BYTES),
        "sequence_id": (2, F.TYPE_STRING),
        "status": (3, F.TYPE_MESSAGE),
    }
    status = inference_pb2.PredictionResponse.DESCRIPTOR.fields_by_name["status"].message_type
    assert status.full_name == "google.rpc.Status"
    assert fields(inference_pb2.TorchServeHealthResponse) == {"health": (1, F.TYPE_STRING)}


def test_inference_service_methods_and_streaming_shape():
    service = inference_pb2.DESCRIPTOR.services_by_name["InferenceAPIsService"]
    assert service.full_name == f"{INFERENCE}.InferenceAPIsService"
    shape = {
        m.name: (m.input_type.name, m.output_type.name, m.client_streaming, m.server_streaming) for m in service.methods
    }
    assert shape == {
        "Ping": ("Empty", "TorchServeHealthResponse", False, False),
        "Predictions": ("PredictionsRequest", "PredictionResponse", False, False),
        "StreamPredictions": ("PredictionsRequest", "PredictionResponse", False, True),
        "StreamPredictions2": ("PredictionsRequest", "PredictionResponse", True, True),
    }


def test_management_messages_and_service_match_torchserve_0_12():
    assert management_pb2.DESCRIPTOR.package == MANAGEMENT
    assert fields(management_pb2.ManagementResponse) == {"msg": (1, F.TYPE_STRING)}
    assert fields(management_pb2.DescribeModelRequest) == {
        "model_name": (1, F.TYPE_STRING),
        "model_version": (2, F.TYPE_STRING),
        "customized": (3, F.TYPE_BOOL),
    }
    assert fields(management_pb2.ListModelsRequest) == {
        "limit": (1, F.TYPE_INT32),
        "next_page_token": (2, F.TYPE_INT32),
    }
    register = fields(management_pb2.RegisterModelRequest)
    assert register["url"] == (9, F.TYPE_STRING) and register["startup_timeout"] == (11, F.TYPE_INT32)
    assert len(register) == 11
    assert fields(management_pb2.ScaleWorkerRequest)["timeout"] == (7, F.TYPE_INT32)
    assert fields(management_pb2.SetDefaultRequest) == {
        "model_name": (1, F.TYPE_STRING),
        "model_version": (2, F.TYPE_STRING),
    }
    assert fields(management_pb2.UnregisterModelRequest) == {
        "model_name": (1, F.TYPE_STRING),
        "model_version": (2, F.TYPE_STRING),
    }
    service = management_pb2.DESCRIPTOR.services_by_name["ManagementAPIsService"]
    assert service.full_name == f"{MANAGEMENT}.ManagementAPIsService"
    assert {m.name for m in service.methods} == {
        "DescribeModel",
        "ListModels",
        "RegisterModel",
        "ScaleWorker",
        "SetDefault",
        "UnregisterModel",
    }
    assert all(m.output_type.name == "ManagementResponse" for m in service.methods)
